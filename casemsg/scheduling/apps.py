from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "casemsg.scheduling"
    label = "scheduling"

    def ready(self) -> None:
        # Alerts follow every case change and deletion, in the write transaction (after the registry and
        # consent: scheduling comes after them in INSTALLED_APPS).
        from casemsg.cases.signals import cases_changed, cases_deleting
        from casemsg.groups.signals import group_deleting, group_members_changed
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
        # A group in use is not deleted; an alert for a group's members runs again when they change.
        group_deleting.connect(hooks.on_group_deleting, dispatch_uid="scheduling.groups.deleting")
        group_members_changed.connect(hooks.on_group_members_changed, dispatch_uid="scheduling.groups.members")
