from django.apps import AppConfig


class MailserverConfig(AppConfig):
    name = "mailserver"
    verbose_name = "Mail server"

    def ready(self):
        from . import checks  # noqa: F401 - registers the system checks
