from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "casemsg.surveys"
    label = "surveys"

    def ready(self) -> None:
        # Auto opt-in asks newly registered numbers after consent has seen the change (consent comes first
        # in INSTALLED_APPS): a number a worker just verified is not asked.
        from casemsg.cases.signals import cases_changed
        from casemsg.consent import texts
        from casemsg.surveys import consent
        from casemsg.surveys import texts as survey_texts

        cases_changed.connect(consent.on_cases_changed, dispatch_uid="surveys.consent.cases")
        # the texts the survey engine sends, in the catalogue of the texts casemsg sends
        texts.register(*survey_texts.TEXTS)
