"""The single `casemsg` entry point: casemsg's own commands up front, Django's behind `casemsg django-admin`.

`casemsg project create demo` runs the `project` management command, `casemsg serve` runs `serve`, and so on.
`casemsg django-admin migrate` reaches any Django command; `casemsg migrate` still works directly so existing
scripts keep running, it is just not advertised in the help.
"""

from __future__ import annotations

import os
import sys
from typing import Final, NoReturn

# A static table rather than asking Django: importing Django and loading every app costs about a second, and
# `casemsg --help` should answer instantly. tests/test_cli.py compares it with Django's own list of casemsg
# commands, so a new management command cannot be left out of the help.
COMMAND_GROUPS: Final[tuple[tuple[str, tuple[tuple[str, str], ...]], ...]] = (
    (
        "Run",
        (
            ("serve", "Migrate, then run the web app, a worker and the scheduler on one machine"),
            ("worker", "Run a worker: the job consumer and the ticker that finds due messages"),
            ("smpp", "Hold the only SMPP bind of each bind_per: process gateway and submit for every worker"),
            ("doctor", "Check the configuration a production installation needs and print what to fix"),
        ),
    ),
    (
        "Projects",
        (
            ("project", "Create and list projects; API keys (with scopes); settings; texts and translations; audit"),
            ("demo", "Create (or refresh) the demo project with a few cases and the sandbox gateway"),
            ("users", "Give people a role in a project (owner, editor, viewer), list and remove them"),
        ),
    ),
    (
        "Cases",
        (
            ("cases", "Import cases from a CSV file (creates new cases, updates existing ones)"),
            ("groups", "Groups of cases (static or dynamic): list, show, create, change; add, remove, import members"),
            ("sources", "Case sources (CommCare HQ, ODK Central, DHIS2, push): add, list, test, sync, runs, import"),
        ),
    ),
    (
        "Messaging",
        (
            ("send", "Send one SMS or email to a case or a mobile worker"),
            ("messages", "Show a project's message log, newest first, with the reason for every failure"),
            ("errors", "Print the error catalogue: every error code and how to fix it"),
        ),
    ),
    (
        "Gateways",
        (("gateway", "Add and remove SMS gateways, route number prefixes to them (map, unmap), and list both"),),
    ),
    (
        "Consent",
        (("consents", "Export the consent ledger as CSV, or send an opt-in request to a case"),),
    ),
    (
        "Surveys",
        (("surveys", "Import SMS surveys (XLSForm or JSON), list them, and start one for a case"),),
    ),
    (
        "Scheduling",
        (
            ("broadcasts", "List broadcasts, show one's sends and failures, pause, resume, cancel or run one"),
            ("alerts", "List, show, pause and resume conditional alerts; run one over every open case now"),
        ),
    ),
)

COMMANDS: Final[frozenset[str]] = frozenset(name for _, rows in COMMAND_GROUPS for name, _ in rows)

DJANGO_ADMIN: Final = "django-admin"
_HELP_ARGS: Final = (["help"], ["--help"], ["-h"])


def command_list() -> str:
    """casemsg's commands, grouped by area, one line each."""
    width = max(len(name) for name in COMMANDS) + 2
    lines: list[str] = []
    for group, rows in COMMAND_GROUPS:
        lines.append(f"{group}:")
        lines.extend(f"  {name:<{width}}{summary}" for name, summary in rows)
    return "\n".join(lines)


def help_text() -> str:
    return (
        "casemsg: a self-hosted, case-based SMS and email messaging engine.\n"
        "\n"
        "Usage: casemsg <command> [options]\n"
        "\n"
        f"{command_list()}\n"
        "\n"
        "Run `casemsg <command> --help` for a command's options and subcommands.\n"
        f"Django's own commands (migrate, createsuperuser, shell, ...): `casemsg {DJANGO_ADMIN} <command>`;\n"
        f"`casemsg {DJANGO_ADMIN} help` lists them all.\n"
    )


def _run_django(prog: str, args: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "casemsg.settings")
    from django.core.management import execute_from_command_line

    # Django names itself after argv[0] in usage lines and errors ("Type 'casemsg django-admin help' ...").
    execute_from_command_line([prog, *args])


def _django_commands() -> set[str]:
    """Every command Django can run here, casemsg's and the installed apps'; this loads Django and the apps."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "casemsg.settings")
    import django
    from django.core.management import get_commands

    # get_commands() only sees the apps' commands once the app registry is populated.
    django.setup()
    return set(get_commands())


def _unknown(name: str, known: set[str]) -> NoReturn:
    import difflib

    close = difflib.get_close_matches(name, sorted(known | COMMANDS), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    sys.stderr.write(f"casemsg: unknown command '{name}'.{hint}\n\n{command_list()}\n\n")
    sys.stderr.write(f"Run `casemsg --help` for more, or `casemsg {DJANGO_ADMIN} help` for Django's commands.\n")
    # 2, like argparse for a usage error; Django's own "Unknown command" exits 1.
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args in _HELP_ARGS:
        sys.stdout.write(help_text())
        return
    if args in (["--version"], ["version"]):
        # Django would answer with its own version number here.
        from casemsg import __version__

        sys.stdout.write(f"casemsg {__version__}\n")
        return
    if args[0] == DJANGO_ADMIN:
        _run_django(f"casemsg {DJANGO_ADMIN}", args[1:])
        return
    if args[0] == "help":
        # `casemsg help send` shows send's help; check the command it names so a typo gets our message too.
        # `casemsg help --commands` and the like are Django's, passed through as they are.
        name = args[1] if not args[1].startswith("-") else ""
    else:
        name = args[0]
    if name and name not in COMMANDS:
        known = _django_commands()
        if name not in known:
            _unknown(name, known)
    _run_django("casemsg", args)


if __name__ == "__main__":
    main()
