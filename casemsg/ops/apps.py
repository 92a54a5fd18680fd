from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "casemsg.ops"
    label = "ops"

    def ready(self) -> None:
        # Message outcomes logged with their fields (message id, project, gateway, error code).
        from casemsg.messaging.signals import statuses_changed
        from casemsg.ops import messagelog

        statuses_changed.connect(messagelog.on_statuses_changed, dispatch_uid="ops.message_log")
