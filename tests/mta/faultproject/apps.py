from django.apps import AppConfig


class FaultProjectConfig(AppConfig):
    name = "faultproject"
    verbose_name = "fault-injection run"

    def ready(self) -> None:
        from mailserver import signals

        from . import kills

        signals.message_received.connect(kills.on_received)
        signals.message_handled.connect(kills.on_handled)
