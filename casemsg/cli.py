"""The single `casemsg` entry point: Django management commands underneath.

`casemsg project create demo` runs the `project` management command, `casemsg serve` runs `serve`, and
so on; Django's own commands (`migrate`, `createsuperuser`, ...) work too.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "casemsg.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv[1:] if argv is None else argv)
    execute_from_command_line(["casemsg", *args])


if __name__ == "__main__":
    main()
