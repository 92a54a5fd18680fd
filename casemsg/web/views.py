from __future__ import annotations

from django.shortcuts import render

from casemsg.messaging import errors
from casemsg.projects.models import Project


def home(request):
    return render(request, "web/home.html", {"projects": Project.objects.order_by("slug")})


def errors_page(request):
    return render(request, "web/errors.html", {"errors": list(errors.CATALOGUE.values())})
