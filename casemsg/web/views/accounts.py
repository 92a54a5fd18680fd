"""Logging in and out, changing one's password, and a project's members page."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy

from casemsg.core.errors import InputError
from casemsg.projects import queries as project_queries
from casemsg.projects import services as projects
from casemsg.projects.models import Membership
from casemsg.web.views.common import project_or_404, staff_required


class LoginView(auth_views.LoginView):
    # Failed logins are throttled by django-axes (settings.AXES_*); a locked-out user sees web/locked.html.
    template_name = "web/login.html"
    redirect_authenticated_user = True
    extra_context = {"axes_limit": settings.AXES_FAILURE_LIMIT}


class LogoutView(auth_views.LogoutView):
    # Django's LogoutView takes POST only (a link cannot log anyone out); it then goes to the login page.
    pass


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "web/password_change.html"
    success_url = reverse_lazy("web:password_change_done")


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "web/password_change_done.html"


ROLE_CHOICES = Membership.ROLE_CHOICES


class AddMemberForm(forms.Form):
    user = forms.CharField(label="Username or email", max_length=254)
    role = forms.ChoiceField(label="Role", choices=ROLE_CHOICES, initial=Membership.VIEWER)


class ChangeMemberForm(forms.Form):
    user_id = forms.IntegerField(widget=forms.HiddenInput)
    role = forms.ChoiceField(label="Role", choices=ROLE_CHOICES, required=False)
    action = forms.ChoiceField(choices=[("change", "change"), ("remove", "remove")])


@staff_required
def members(request: HttpRequest, slug: str) -> HttpResponse:
    """Who may use the project, with which role. Everyone in the project may read it; owners change it
    (casemsg.web.access.RULES)."""
    project = project_or_404(slug)
    add_form = AddMemberForm(request.POST if request.POST.get("action") == "add" else None)
    if request.method == "POST":
        try:
            if request.POST.get("action") == "add":
                if add_form.is_valid():
                    user = projects.find_user(add_form.cleaned_data["user"])
                    projects.add_member(project, user, add_form.cleaned_data["role"])
                    messages.success(request, f"{user.get_username()} is now {add_form.cleaned_data['role']}.")
                    return redirect("web:members", slug)
            else:
                change = ChangeMemberForm(request.POST)
                if change.is_valid():
                    member = project_queries.member(project, change.cleaned_data["user_id"])
                    if member is None:
                        messages.error(request, "That user is not a member of this project.")
                    elif change.cleaned_data["action"] == "remove":
                        projects.remove_member(project, member)
                        messages.success(request, f"{member.get_username()} was removed from the project.")
                    else:
                        projects.add_member(project, member, change.cleaned_data["role"] or "")
                        messages.success(request, f"{member.get_username()} is now {change.cleaned_data['role']}.")
                else:
                    messages.error(request, "Choose a member and what to do.")
                return redirect("web:members", slug)
        except InputError as e:
            if request.POST.get("action") == "add":
                add_form.add_error(None, f"{e.code}: {e.message}")
            else:
                messages.error(request, f"{e.code}: {e.message}")
                return redirect("web:members", slug)
    return render(
        request,
        "web/members.html",
        {"project": project, "members": projects.members(project), "add_form": add_form, "roles": ROLE_CHOICES},
        status=422 if add_form.errors else 200,
    )
