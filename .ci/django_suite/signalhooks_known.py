"""The test runner of Django's suite under signalhooks: fail on any difference not listed.

``known_differences.txt`` lists the tests that fail with signalhooks active and why
each is harmless. A failure, error or unexpected success not in it fails the run; so
does an entry that no longer fails (the list stays short and true).
"""

from __future__ import annotations

import os
import sys
import unittest
from pathlib import Path
from typing import Any

import django
from django.test.runner import DiscoverRunner

LIST = Path(__file__).with_name("known_differences.txt")


def known() -> dict[str, str]:
    """Return ``{test id: reason}`` for this Django version.

    A line is ``test.id  reason``; ``[5.2]`` or ``[6.1]`` before the id limits it to that
    Django feature release.
    """
    version = "{}.{}".format(*django.VERSION[:2])
    entries: dict[str, str] = {}
    for line in LIST.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            only, line = line[1:].split("]", 1)
            if only != version:
                continue
        test, _, reason = line.strip().partition(" ")
        entries[test] = reason.strip()
    return entries


class KnownDifferencesRunner(DiscoverRunner):
    def suite_result(self, suite: Any, result: unittest.TestResult, **kwargs: Any) -> int:
        failed = {
            test.id(): kind
            for kind, items in (("failure", result.failures), ("error", result.errors))
            for test, _ in items
        }
        failed.update({test.id(): "unexpected success" for test in result.unexpectedSuccesses})
        expected = known()
        new = sorted(set(failed) - set(expected))
        # Only entries of the apps this run covered can be stale.
        labels = os.environ.get("SIGNALHOOKS_SUITE_APPS", "").split()
        stale = sorted(t for t in set(expected) - set(failed) if t.split(".")[0] in labels)
        for test in sorted(set(failed) & set(expected)):
            print(f"known difference: {test} ({expected[test]})", file=sys.stderr)
        for test in new:
            print(f"NEW DIFFERENCE: {test} ({failed[test]})", file=sys.stderr)
        for test in stale:
            print(f"STALE ENTRY (passes now; remove it): {test}", file=sys.stderr)
        return len(new) + len(stale)
