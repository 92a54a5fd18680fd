from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "casemsg.gateways"
    label = "gateways"
