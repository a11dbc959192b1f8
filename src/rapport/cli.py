"""The ``rapport`` command line (O): every Django management command, plus Rapport's own.

``rapport run``, ``rapport worker``, ``rapport demo``, ``rapport token create USER`` and the
domain commands are management commands living with their domain; this entry point only sets
the settings module and hands over.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["rapport", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
