from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "casemsg.web"
    label = "web"
