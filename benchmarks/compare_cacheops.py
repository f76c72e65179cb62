"""Compare ``HooksQuerySet.update()`` of 1,000 rows with a rule to django-cacheops.

Usage: python -m benchmarks.compare_cacheops

django-cacheops' ``invalidated_update()`` on the same number of rows, in the same
run, interleaved round by round with our update and a plain one; prints the median
wall-clock time of each and the queries of one call. Not part of the pytest
benchmark suite: installing cacheops patches every QuerySet, which would tax the
other groups' variants.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Callable

ROUNDS = 30


def main() -> None:
    os.environ.pop("DATABASE_URL", None)  # SQLite in memory, as the suite
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    from django.conf import settings

    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "cacheops"]
    settings.CACHEOPS_REDIS = settings.REDIS_URL  # the suite's own throwaway server
    settings.CACHEOPS = {"benchapp.plain": {"ops": "all", "timeout": 300}}
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from benchmarks import operations as ops
    from benchmarks.benchapp import models as m

    call_command("migrate", run_syncdb=True, verbosity=0)
    ops.fill(m.Ruled, 1000)
    ops.fill(m.Plain, 1000)
    statuses = itertools.cycle(["on", "off"])
    variants: dict[str, Callable[[], object]] = {
        "signalhooks rule (HooksQuerySet.update)": lambda: m.Ruled.objects.update(
            status=next(statuses)
        ),
        "django-cacheops invalidated_update()": lambda: m.Plain.objects.all().invalidated_update(
            status=next(statuses)
        ),
        "plain QuerySet.update()": lambda: m.Plain.objects.update(status=next(statuses)),
    }
    list(m.Plain.objects.filter(status="on").cache())  # a cached query cacheops must drop
    times: dict[str, list[float]] = {name: [] for name in variants}
    for name, update in variants.items():
        with CaptureQueriesContext(connection) as queries:
            update()
        print(f"{name}: {len(queries)} queries")
    for _ in range(ROUNDS):
        for name, update in variants.items():
            start = time.perf_counter()
            update()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ours, theirs, plain = medians.values()
    for name, median in medians.items():
        print(f"{name}: median {median * 1000:.2f} ms")
    print(f"signalhooks / cacheops: {ours / theirs:.3f}; signalhooks / plain: {ours / plain:.1f}")


if __name__ == "__main__":
    main()
