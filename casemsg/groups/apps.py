from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "casemsg.groups"
    label = "groups"
