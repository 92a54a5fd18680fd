from django.contrib import admin
from django.urls import include, path

from casemsg.api.urls import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("", include("casemsg.web.urls")),
]
