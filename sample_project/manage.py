#!/usr/bin/env python
"""Run Django commands for the sample project: ``python sample_project/manage.py demo``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    # Import the project as ``sample_project.*`` from the repository root, whatever the
    # current directory, and never its apps as top-level modules (one module, one name).
    sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != HERE]
    sys.path.insert(0, str(HERE.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
