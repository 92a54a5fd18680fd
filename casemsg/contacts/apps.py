from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "casemsg.contacts"
    label = "contacts"
