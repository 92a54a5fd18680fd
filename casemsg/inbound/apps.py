from django.apps import AppConfig


class InboundConfig(AppConfig):
    name = "casemsg.inbound"
    label = "inbound"

    def ready(self) -> None:
        # Register the inbound job with the queue in every process (web and worker alike): the worker
        # command imports only the messaging tasks, and an unregistered job is dropped by the consumer.
        from casemsg.inbound import tasks  # noqa: F401
