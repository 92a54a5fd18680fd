from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "casemsg.messaging"
    label = "messaging"

    def ready(self) -> None:
        # Register the deliver job with the queue in every process (web and worker alike), and let a commit
        # that queued messages wake a worker.
        from casemsg.messaging import tasks
        from casemsg.messaging.signals import messages_queued

        messages_queued.connect(tasks.on_messages_queued, dispatch_uid="messaging.tasks.wake")
        # a gateway is not removed under messages waiting on it unless asked to (gateways.services.remove_gateway)
        from casemsg.gateways.signals import gateway_uses
        from casemsg.messaging.queries import waiting_on_gateway

        gateway_uses.connect(waiting_on_gateway, dispatch_uid="messaging.queries.waiting_on_gateway")
