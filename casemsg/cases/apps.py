from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "casemsg.cases"
    label = "cases"
