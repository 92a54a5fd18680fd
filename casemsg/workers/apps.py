from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "casemsg.workers"
    label = "workers"
