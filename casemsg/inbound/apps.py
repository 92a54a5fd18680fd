from django.apps import AppConfig


class InboundConfig(AppConfig):
    name = "casemsg.inbound"
    label = "inbound"

    def ready(self) -> None:
        # Register the inbound job with the queue in every process (web and worker alike): an unregistered
        # job is dropped by the consumer. Stored inbound messages wake it.
        from casemsg.consent import texts
        from casemsg.gateways.signals import gateway_delivered
        from casemsg.inbound import receive, tasks
        from casemsg.inbound.actions import registry
        from casemsg.inbound.signals import inbound_stored

        inbound_stored.connect(tasks.on_inbound_stored, dispatch_uid="inbound.tasks.wake")
        # receipts and MO from a gateway's own connection (an SMPP bind), as its webhooks would store them
        gateway_delivered.connect(receive.on_gateway_delivered, dispatch_uid="inbound.receive.gateway_delivered")
        # the texts the keyword actions send, in the catalogue of the texts casemsg sends
        texts.register(*registry.texts())
