from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "casemsg.projects"
    label = "projects"
