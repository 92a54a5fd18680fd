from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "casemsg.contacts"
    label = "contacts"

    def ready(self) -> None:
        # The phone registry follows every case and worker change in the same transaction.
        from casemsg.cases.signals import cases_changed, cases_deleting
        from casemsg.contacts import registry
        from casemsg.workers.signals import workers_changed, workers_deleting

        cases_changed.connect(registry.on_cases_changed, dispatch_uid="contacts.registry.cases")
        cases_deleting.connect(registry.on_cases_deleting, dispatch_uid="contacts.registry.cases_deleting")
        workers_changed.connect(registry.on_workers_changed, dispatch_uid="contacts.registry.workers")
        workers_deleting.connect(registry.on_workers_deleting, dispatch_uid="contacts.registry.workers_deleting")
