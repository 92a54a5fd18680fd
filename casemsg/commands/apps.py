from django.apps import AppConfig


class CommandsConfig(AppConfig):
    """Holds every `casemsg` command (Django management commands): an interface on top of the areas."""

    name = "casemsg.commands"
    label = "commands"
