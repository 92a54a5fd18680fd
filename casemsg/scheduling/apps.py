from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "casemsg.scheduling"
    label = "scheduling"

    def ready(self) -> None:
        # Alerts follow every case change and deletion, in the write transaction (after the registry and
        # consent: scheduling comes after them in INSTALLED_APPS).
        from casemsg.cases.signals import cases_changed, cases_deleting
        from casemsg.projects.signals import settings_changed
        from casemsg.scheduling import hooks
        from casemsg.workers.signals import workers_changed

        cases_changed.connect(hooks.on_cases_changed, dispatch_uid="scheduling.alerts.cases")
        cases_deleting.connect(hooks.on_cases_deleting, dispatch_uid="scheduling.alerts.cases_deleting")
        # A contact's time zone, or a property a schedule reads, changed: its instances' next events move.
        cases_changed.connect(hooks.recompute_on_cases_changed, dispatch_uid="scheduling.instances.cases")
        workers_changed.connect(hooks.recompute_on_workers_changed, dispatch_uid="scheduling.instances.workers")
        # The project's default time zone changed: instances read in it move.
        settings_changed.connect(hooks.recompute_on_settings_changed, dispatch_uid="scheduling.instances.project")
