from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "casemsg.scheduling"
    label = "scheduling"
