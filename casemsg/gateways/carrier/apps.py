from django.apps import AppConfig


class CarrierConfig(AppConfig):
    name = "casemsg.gateways.carrier"
    label = "carrier"
    verbose_name = "gateways: failover and number pools"
