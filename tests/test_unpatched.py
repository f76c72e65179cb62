"""signalhooks in a Django that nothing has patched (tests/unpatched_program.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from django.conf import settings


def test_m2m_counters_rules_and_mail_in_an_unpatched_django():
    result = subprocess.run(
        [sys.executable, "-m", "tests.unpatched_program", settings.REDIS_URL],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    # Nothing made Field subscriptable, before or after signalhooks ran.
    assert seen["unpatched_before"] and seen["unpatched"]
    assert seen["m2m"] == {
        "entry.categories.add(news)": ["category:news", "entry:e"],
        "entry.categories.remove(news)": ["category:news", "entry:e"],
        "news.entries.add(entry, other)": ["category:news", "entry:e", "entry:o"],
        "news.entries.remove(other)": ["category:news", "entry:o"],
        "entry.categories.set([])": ["category:news", "entry:e"],
        "news.entries.set([entry])": ["category:news", "entry:e"],
        "news.entries.clear()": ["category:news", "entry:e"],
        "entry.categories.set([news])": ["category:news", "entry:e"],
        "entry.categories.clear()": ["category:news", "entry:e"],
    }
    assert seen["vote_count"] == 1 and seen["topic_key_gone"]
    assert seen["mails"] == [[["ada@example.com"], "Welcome to Unpatched, ada!"]]
