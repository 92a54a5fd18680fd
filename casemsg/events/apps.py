from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "casemsg.events"
    label = "events"

    def ready(self) -> None:
        # Event webhooks follow what the areas below announce: each hook's receiver queues delivery rows in
        # bulk (the same transaction where the hook is sent inside one), never an HTTP call.
        from casemsg.consent.signals import ledger_written
        from casemsg.events import services
        from casemsg.inbound.signals import inbound_received
        from casemsg.messaging.signals import statuses_changed
        from casemsg.sources.signals import run_finished

        statuses_changed.connect(services.on_statuses_changed, dispatch_uid="events.message_status")
        inbound_received.connect(services.on_inbound_received, dispatch_uid="events.message_inbound")
        ledger_written.connect(services.on_ledger_written, dispatch_uid="events.consent")
        run_finished.connect(services.on_source_run, dispatch_uid="events.source_run")
