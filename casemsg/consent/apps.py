from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "casemsg.consent"
    label = "consent"

    def ready(self) -> None:
        # Consent follows every case change (after the registry: contacts comes first in INSTALLED_APPS).
        from casemsg.cases.signals import cases_changed
        from casemsg.consent import optout, services
        from casemsg.messaging.signals import messages_sent, opt_out_reported
        from casemsg.workers.signals import workers_changed

        cases_changed.connect(services.on_cases_changed, dispatch_uid="consent.cases")
        opt_out_reported.connect(optout.on_opt_out_reported, dispatch_uid="consent.gateway_opt_out")
        messages_sent.connect(services.on_messages_sent, dispatch_uid="consent.question_sent")
        workers_changed.connect(services.on_workers_changed, dispatch_uid="consent.workers")
