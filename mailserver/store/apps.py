from django.apps import AppConfig


class StoreConfig(AppConfig):
    name = "mailserver.store"
    # "store" alone would clash with any project's app of that name.
    label = "mailserver_store"
    verbose_name = "Mail store"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401 - registers the system checks
