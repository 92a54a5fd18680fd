from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "casemsg.messaging"
    label = "messaging"
