from django.urls import path

from casemsg.web.views import cases, consents, messages, projects, scheduling, simulator, surveys, workers

app_name = "web"
urlpatterns = [
    path("", projects.home, name="home"),
    path("errors/", projects.errors_page, name="errors"),
    path("projects/<slug:slug>/", projects.project_page, name="project"),
    path("projects/<slug:slug>/cases/", cases.case_list, name="cases"),
    # `path:` because a given case id may hold any character, '/' included; the page also takes the
    # send form's POST, so no other route hangs below it.
    path("projects/<slug:slug>/cases/<path:case_id>/", cases.case_detail, name="case"),
    path("projects/<slug:slug>/mobile-workers/", workers.worker_list, name="workers"),
    path("projects/<slug:slug>/mobile-workers/<int:worker_id>/", workers.worker_detail, name="worker"),
    path("projects/<slug:slug>/messages/", messages.message_log, name="messages"),
    path("projects/<slug:slug>/simulator/", simulator.simulator, name="simulator"),
    path("projects/<slug:slug>/simulator/conversation/", simulator.conversation_part, name="conversation"),
    path("projects/<slug:slug>/simulator/reply/", simulator.reply, name="reply"),
    path("projects/<slug:slug>/consents/", consents.consent_list, name="consents"),
    path("projects/<slug:slug>/consents.csv", consents.consent_csv, name="consents_csv"),
    path("projects/<slug:slug>/broadcasts/", scheduling.broadcast_list, name="broadcasts"),
    path("projects/<slug:slug>/broadcasts/new/", scheduling.broadcast_new, name="broadcast_new"),
    path("projects/<slug:slug>/broadcasts/preflight/", scheduling.broadcast_preflight, name="broadcast_preflight"),
    path("projects/<slug:slug>/broadcasts/<int:broadcast_id>/", scheduling.broadcast_detail, name="broadcast"),
    path("projects/<slug:slug>/broadcasts/<int:broadcast_id>/edit/", scheduling.broadcast_edit, name="broadcast_edit"),
    path("projects/<slug:slug>/alerts/", scheduling.alert_list, name="alerts"),
    path("projects/<slug:slug>/alerts/new/", scheduling.alert_new, name="alert_new"),
    path("projects/<slug:slug>/alerts/<int:alert_id>/", scheduling.alert_detail, name="alert"),
    path("projects/<slug:slug>/alerts/<int:alert_id>/edit/", scheduling.alert_edit, name="alert_edit"),
    path("projects/<slug:slug>/surveys/", surveys.survey_list, name="surveys"),
    path("projects/<slug:slug>/surveys/<int:survey_id>/", surveys.survey_detail, name="survey"),
    path("projects/<slug:slug>/survey-sessions/", surveys.session_list, name="survey_sessions"),
]
