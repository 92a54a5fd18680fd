"""The systemd units in deploy/ start real casemsg commands with options those commands take, read the env
file the example shows, set only settings casemsg reads, and are the ones docs/scale-out.md tells to install."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

from casemsg import cli

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))
ENV_FILE = "/etc/casemsg/casemsg.env"


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def test_the_units_are_there():
    names = {p.name for p in UNITS}
    assert {"casemsg-web.service", "casemsg-worker@.service", "casemsg-migrate.service"} <= names


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_exec_start_is_a_casemsg_command_with_options_it_takes(path: Path):
    service = unit(path)["Service"]
    words = shlex.split(service["ExecStart"])
    assert words[0].endswith("/bin/casemsg"), words
    args = words[1:]
    if args[0] == cli.DJANGO_ADMIN:
        name, rest = args[1], args[2:]
    else:
        name, rest = args[0], args[1:]
        assert name in cli.COMMANDS, f"{path.name}: `casemsg {name}` is not one of casemsg's commands"
    commands = get_commands()
    assert name in commands, f"{path.name}: no command {name!r}"
    parser = load_command_class(commands[name], name).create_parser("casemsg", name)
    parser.parse_args(rest)  # an unknown option or a bad value exits here
    assert service["EnvironmentFile"] == ENV_FILE
    assert service["User"] == "casemsg"


def test_the_env_example_sets_only_settings_casemsg_reads_and_holds_no_secret():
    settings_source = (ROOT / "casemsg" / "settings.py").read_text()
    read = set(re.findall(r"CASEMSG_[A-Z_]+", settings_source))
    example = (DEPLOY / "casemsg.env.example").read_text()
    keys = re.findall(r"^#?(CASEMSG_[A-Z_]+)=(.*)$", example, flags=re.M)
    assert keys
    for key, value in keys:
        assert key in read, f"{key} is not a setting casemsg reads"
        for secret in ("SECRET_KEY", "PASSWORD", "TOKEN"):
            if secret in key:
                assert value in ("", "CHANGE-ME"), f"{key} has a value in the example"
    for url in re.findall(r"^CASEMSG_(?:DATABASE|QUEUE)_URL=(.*)$", example, flags=re.M):
        assert "CHANGE-ME" in url or "@" not in url  # a password only as a placeholder


def test_the_scale_out_recipe_names_every_unit_and_the_env_file():
    doc = (ROOT / "docs" / "scale-out.md").read_text()
    for path in [*UNITS, DEPLOY / "casemsg.env.example"]:
        assert f"deploy/{path.name}" in doc, f"docs/scale-out.md does not mention deploy/{path.name}"
