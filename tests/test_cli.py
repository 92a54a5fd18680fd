"""The `casemsg` entry point: its own help, Django behind `casemsg django-admin`, and clear unknown commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import get_commands

from casemsg import cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # A throwaway data dir: settings create it (and a secret key) on import, and the subprocesses should not
    # write into the developer's var/.
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "casemsg.settings", "CASEMSG_DATA_DIR": str(tmp_path)}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "casemsg", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("args", [[], ["--help"], ["-h"], ["help"]])
def test_help_lists_every_command_in_its_group(env: dict[str, str], args: list[str]) -> None:
    r = run(env, *args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for group, rows in cli.COMMAND_GROUPS:
        start = lines.index(f"{group}:")
        listed = [line.split()[0] for line in lines[start + 1 : start + 1 + len(rows)]]
        assert listed == [name for name, _ in rows]
    assert "casemsg <command> --help" in r.stdout
    assert "casemsg django-admin <command>" in r.stdout
    assert "migrate" in r.stdout
    # Django's own help starts with this; ours must not be it.
    assert "Available subcommands" not in r.stdout


def test_help_does_not_import_django(env: dict[str, str]) -> None:
    code = (
        "import sys; from casemsg import cli; cli.main(['--help']); "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), 'django imported'"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Messaging:" in r.stdout


def test_table_matches_the_management_commands_django_finds() -> None:
    # The help is a static table for speed; this is what keeps it honest when a command is added or removed.
    ours = {name for name, app in get_commands().items() if app.startswith("casemsg")}
    assert ours == cli.COMMANDS


def test_version_is_casemsgs(env: dict[str, str]) -> None:
    r = run(env, "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("casemsg ")


def test_django_admin_reaches_djangos_commands(env: dict[str, str]) -> None:
    r = run(env, "django-admin", "check")
    assert r.returncode == 0, r.stderr
    assert "System check identified no issues" in r.stdout


def test_django_commands_still_work_directly(env: dict[str, str]) -> None:
    r = run(env, "check")
    assert r.returncode == 0, r.stderr
    assert "System check identified no issues" in r.stdout


def test_own_command_help_goes_to_the_command(env: dict[str, str]) -> None:
    r = run(env, "send", "--help")
    assert r.returncode == 0, r.stderr
    assert "usage: casemsg send" in r.stdout
    assert "--project" in r.stdout


def test_unknown_command_exits_2_with_the_command_list(env: dict[str, str]) -> None:
    r = run(env, "sendd")
    assert r.returncode == 2
    assert "unknown command 'sendd'" in r.stderr
    assert "Did you mean 'send'?" in r.stderr
    assert "Traceback" not in r.stderr
    for group, _ in cli.COMMAND_GROUPS:
        assert f"{group}:" in r.stderr
    assert r.stdout == ""


def test_help_for_an_unknown_command_exits_2(env: dict[str, str]) -> None:
    r = run(env, "help", "nosuchcommand")
    assert r.returncode == 2
    assert "unknown command 'nosuchcommand'" in r.stderr
    assert "Traceback" not in r.stderr
