"""Logging in and out, changing one's password, resetting a forgotten one by email (Django's password reset
views, through the installation's email backend), a project's members page (add, change, remove, invite by
email with a one-time link, and for an administrator a member's one-time password link), and accepting an
invitation. Failed logins stay throttled by django-axes: these pages only set passwords, and logging in is
the login page's (an invitation logs its new account in once its password is set)."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.cache import add_never_cache_headers
from django.views.decorators.debug import sensitive_post_parameters

from casemsg.core import errors
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


class PasswordResetView(auth_views.PasswordResetView):
    """'Forgot your password?': an email with a one-time link, through the installation's email backend. The
    page says the same whether or not an account has the address (no one learns who has an account)."""

    template_name = "web/password_reset_form.html"
    email_template_name = "web/password_reset_email.txt"
    subject_template_name = "web/password_reset_subject.txt"
    success_url = reverse_lazy("web:password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "web/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """The one-time link's page (from the email, the admin's 'Reset link' or `casemsg users add`): a new
    password; a used or expired link is refused (web/password_reset_confirm.html says so)."""

    template_name = "web/password_reset_confirm.html"
    success_url = reverse_lazy("web:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "web/password_reset_complete.html"


ROLE_CHOICES = Membership.ROLE_CHOICES


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=254)
    role = forms.ChoiceField(label="Role", choices=ROLE_CHOICES, initial=Membership.VIEWER)


class AcceptForm(forms.Form):
    username = forms.CharField(label="Username", max_length=150, help_text="What you will log in with.")
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(
        label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return data


@sensitive_post_parameters("password1", "password2")
def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    """An invitation's one-time link: choose a username and password, join the project, be logged in. A link
    used, expired or unknown is refused with what happened and what to do (404 or 410)."""
    try:
        invitation = projects.open_invitation(token)
    except InputError as e:
        response = render(request, "web/invitation_refused.html", {"error": e}, status=e.status)
        add_never_cache_headers(response)
        return response
    form = AcceptForm(request.POST or None, initial={"username": invitation.email.split("@")[0]})
    if request.method == "POST" and form.is_valid():
        try:
            user = projects.accept_invitation(token, form.cleaned_data["username"], form.cleaned_data["password1"])
        except InputError as e:
            field = {errors.USERNAME_TAKEN: "username", errors.USERNAME_REQUIRED: "username"}
            form.add_error(field.get(e.code, "password1"), e.message)
        else:
            login(request, cast(Any, user), backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request, f"Welcome, {user.get_username()}: you are {invitation.role} of {invitation.project.name}."
            )
            return redirect(reverse("web:project", args=[invitation.project.slug]))
    response = render(
        request,
        "web/invitation_accept.html",
        {"invitation": invitation, "form": form},
        status=422 if form.errors else 200,
    )
    add_never_cache_headers(response)
    return response


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
    # its own ids: the add form beside it has a `role` too
    invite_form = InviteForm(request.POST if request.POST.get("action") == "invite" else None, auto_id="invite_%s")
    shown_link: dict[str, str] | None = None  # a one-time link made now: shown once, on this answer only
    if request.method == "POST" and request.POST.get("action") == "invite":
        if invite_form.is_valid():
            try:
                row, token = projects.invite(
                    project, invite_form.cleaned_data["email"], invite_form.cleaned_data["role"], request.user
                )
            except InputError as e:
                invite_form.add_error("email", f"{e.code}: {e.message}")
            else:
                link = request.build_absolute_uri(reverse("web:invitation", args=[token]))
                problem = projects.email_invitation(row, link)
                shown_link = {"what": f"Invitation of {row.email} as {row.role}", "link": link}
                if problem is None:
                    messages.success(request, f"Invitation emailed to {row.email}; the link is also below.")
                else:
                    messages.warning(request, f"The email could not be sent ({problem}): pass the link on yourself.")
                invite_form = InviteForm(auto_id="invite_%s")
    elif request.method == "POST" and request.POST.get("action") == "reset_link":
        # An administrator's: a project owner could otherwise take over an account that reaches other projects.
        if not getattr(request.user, "is_superuser", False):
            raise PermissionDenied("Only an administrator makes a password link for someone else.")
        user_id = request.POST.get("user_id", "")
        member = project_queries.member(project, int(user_id)) if user_id.isdigit() else None
        if member is None:
            messages.error(request, "That user is not a member of this project.")
            return redirect("web:members", slug)
        uid, token = projects.password_token(member)
        link = request.build_absolute_uri(reverse("web:password_reset_confirm", args=[uid, token]))
        shown_link = {"what": f"Password link for {member.get_username()}", "link": link}
    elif request.method == "POST":
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
    response = render(
        request,
        "web/members.html",
        {
            "project": project,
            "members": projects.members(project),
            "add_form": add_form,
            "invite_form": invite_form,
            "invitations": projects.pending_invitations(project),
            "shown_link": shown_link,
            "roles": ROLE_CHOICES,
        },
        status=422 if add_form.errors or invite_form.errors else 200,
    )
    if shown_link is not None:
        add_never_cache_headers(response)  # the page holds a one-time link
    return response
