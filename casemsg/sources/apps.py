from django.apps import AppConfig


class SourcesConfig(AppConfig):
    name = "casemsg.sources"
    label = "sources"
    verbose_name = "Case sources"
