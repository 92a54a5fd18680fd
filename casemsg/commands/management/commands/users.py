"""`casemsg users`: add people to a project with a role, list and remove them. A new account always gets a
password or a way to set one: typed twice (getpass, at a terminal), read from stdin (`--password-stdin`) or an
environment variable (`--password-from-env`), or else a one-time link that sets it (Django's password reset
token, the page /accounts/reset/…, printed for the administrator to pass on; `--link` asks for it)."""

import getpass
import json
import os
import sys
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse

from casemsg.commands import lookup
from casemsg.core.errors import InputError
from casemsg.projects import services
from casemsg.projects.services import ROLES

_project = lookup.project


class Command(BaseCommand):
    help = "Add people to a project with a role (owner, editor, viewer), list and remove them."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        a = sub.add_parser(
            "add",
            help="give a user a role in a project, creating the account if it does not exist",
            description="Passwords never go on the command line. A new account's password is typed twice at a "
            "terminal, or read from stdin (--password-stdin) or an environment variable (--password-from-env); "
            "without a terminal, or with --link, the command prints a one-time link that sets it.",
        )
        a.add_argument("username")
        a.add_argument("--project", required=True, help="the project's slug")
        a.add_argument("--role", required=True, choices=ROLES)
        a.add_argument("--email", default=None, help="the user's email address (owners can add members by it)")
        a.add_argument("--password-from-env", default=None, metavar="VAR", help="set the password from $VAR")
        a.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
        a.add_argument("--link", action="store_true", help="print a one-time link that sets the password")
        a.add_argument(
            "--url",
            default=os.environ.get("CASEMSG_PUBLIC_URL", "http://127.0.0.1:8000"),
            help="the pages' address, for the link (default $CASEMSG_PUBLIC_URL, else http://127.0.0.1:8000)",
        )
        r = sub.add_parser("remove", help="take a user's role in a project away (the account stays)")
        r.add_argument("username")
        r.add_argument("--project", required=True)
        ls = sub.add_parser("list", help="list a project's members and their roles")
        ls.add_argument("--project", required=True)
        ls.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **o: Any) -> None:
        try:
            getattr(self, "_" + o["action"])(o)
        except InputError as e:
            raise CommandError(f"{e.code}: {e.message}") from e

    def _add(self, o: dict[str, Any]) -> None:
        project = _project(o["project"])
        password = None
        if o["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("No password on stdin.")
        elif o["password_from_env"]:
            password = os.environ.get(o["password_from_env"], "")
            if not password:
                raise CommandError(f"The environment variable {o['password_from_env']} is empty or not set.")
        if o["email"] is not None:
            try:
                validate_email(o["email"])
            except ValidationError as e:
                raise CommandError(f"'{o['email']}' is not an email address.") from e
        User = get_user_model()
        exists = User.objects.filter(username=o["username"]).exists()
        if password is None and not exists and not o["link"] and sys.stdin.isatty():
            password = _typed_twice()
        with transaction.atomic():
            user = User.objects.filter(username=o["username"]).first()
            created = user is None
            if user is None:
                user = User(username=o["username"])
                try:
                    user.full_clean(exclude=["password"])
                except ValidationError as e:
                    raise CommandError(f"'{o['username']}' cannot be a username: {_sentences(e)}") from e
            if o["email"] is not None:
                user.email = o["email"]
            if password is not None:
                try:
                    validate_password(password, user)
                except ValidationError as e:
                    raise CommandError(f"The password is refused: {_sentences(e)}") from e
                user.set_password(password)
            elif created:
                user.set_unusable_password()
            user.save()
            services.add_member(project, user, o["role"])
        what = "Created user" if created else "User"
        self.stdout.write(f"{what} {user.get_username()} is {o['role']} of {project.slug}.")
        if o["link"] or (created and password is None):
            uid, token = services.password_token(user)
            link = o["url"].rstrip("/") + reverse("web:password_reset_confirm", args=[uid, token])
            self.stdout.write(
                f"Set the password with this one-time link (it works once, for "
                f"{settings.PASSWORD_RESET_TIMEOUT // 86400} days; pass it on privately):\n{link}"
            )

    def _remove(self, o: dict[str, Any]) -> None:
        project = _project(o["project"])
        user = get_user_model().objects.filter(username=o["username"]).first()
        if user is None or not services.remove_member(project, user):
            raise CommandError(f"{o['username']} is not a member of {project.slug}.")
        self.stdout.write(f"{o['username']} is no longer a member of {project.slug}.")

    def _list(self, o: dict[str, Any]) -> None:
        rows = list(services.members(_project(o["project"])))
        if o["json"]:
            out = [{"username": m.user.get_username(), "email": m.user.email, "role": m.role} for m in rows]
            self.stdout.write(json.dumps(out))
            return
        for m in rows:
            self.stdout.write(f"{m.user.get_username()}\t{m.role}\t{m.user.email}")


def _typed_twice() -> str:
    first = getpass.getpass("Password: ")
    if not first:
        raise CommandError("No password typed (give --link for a link that sets it instead).")
    if getpass.getpass("Password (again): ") != first:
        raise CommandError("The two passwords differ.")
    return first


def _sentences(e: ValidationError) -> str:
    return " ".join(e.messages)
