from django.contrib import admin
from django.urls import include, path

from casemsg.api.urls import api
from casemsg.ops import views as ops

urlpatterns = [
    # operations: liveness, readiness, Prometheus metrics (docs/operations.md)
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("", include("casemsg.web.urls")),
]

# Styled error pages that never show a stack trace (under /api/, casemsg.api.core answers in JSON instead).
handler403 = "casemsg.web.views.common.permission_denied"
handler404 = "casemsg.web.views.common.page_not_found"
handler500 = "casemsg.web.views.common.server_error"
