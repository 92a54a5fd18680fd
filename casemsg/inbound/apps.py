from django.apps import AppConfig


class InboundConfig(AppConfig):
    name = "casemsg.inbound"
    label = "inbound"
