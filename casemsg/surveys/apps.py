from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "casemsg.surveys"
    label = "surveys"
