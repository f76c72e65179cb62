"""A ``cached()`` hit against a plain GET and django-cacheops' ``cached_as`` hit, same Redis.

Usage: python -m benchmarks.compare_hits [--processes 8]

The same 2 kB value is read by each variant: a plain django-redis ``cache.get``;
``cached()`` without tags; with 2 tags; cacheops' ``cached_as`` (its hit is one
GET). Client wall clock is timed in turns (best of ROUNDS batches of NUMBER calls);
the Redis server's CPU per call (``INFO cpu``, user + sys) over CPU_CALLS calls of
each, alone. ``--processes N`` also runs each variant in N processes at once for
THROUGHPUT_SECONDS and prints the hits per second the one server answered. Not part of
the pytest benchmark suite: installing cacheops patches every QuerySet, which would
tax the other groups' variants.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from collections.abc import Callable

ROUNDS = 30
NUMBER = 200
CPU_CALLS = 20_000
THROUGHPUT_SECONDS = 3.0
VALUE = "x" * 2048
TAGS = ["articles", "author:1"]


def setup() -> dict[str, Callable[[], object]]:
    os.environ.pop("DATABASE_URL", None)  # SQLite in memory, as the suite
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    os.environ["SIGNALHOOKS_BENCH_UNCOUNTED"] = "1"  # no round-trip counting wrapper
    from django.conf import settings

    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "cacheops"]
    settings.CACHEOPS_REDIS = settings.REDIS_URL
    settings.CACHEOPS = {"benchapp.plain": {"ops": "all", "timeout": 300}}
    import django

    django.setup()
    from cacheops import cached_as
    from django.core.cache import cache
    from django.core.management import call_command

    from benchmarks.benchapp import models as m
    from signalhooks import cached

    call_command("migrate", run_syncdb=True, verbosity=0)
    cache.set("plain", VALUE, timeout=300)

    @cached_as(m.Plain, timeout=300)
    def cacheops_hit() -> str:
        return VALUE

    def compute() -> str:
        return VALUE

    variants: dict[str, Callable[[], object]] = {
        "plain GET (django-redis cache.get)": lambda: cache.get("plain"),
        "cached() hit, no tags": lambda: cached("page", compute, timeout=300),
        "cached() hit, 2 tags": lambda: cached("tagged", compute, tags=TAGS, timeout=300),
        "django-cacheops cached_as hit": cacheops_hit,
    }
    for read in variants.values():  # fill, then one hit each: connections and numbers held
        read()
        assert read() == VALUE
    return variants


def server_cpu() -> float:
    from django_redis import get_redis_connection

    info = get_redis_connection("default").info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _worker(name: str, seconds: float, start: object, results: object) -> None:
    read = setup()[name]
    start.wait()  # type: ignore[attr-defined]
    count, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(50):
            read()
        count += 50
    results.put(count)  # type: ignore[attr-defined]


def throughput(name: str, processes: int) -> float:
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(processes + 1), context.Queue()
    workers = [
        context.Process(target=_worker, args=(name, THROUGHPUT_SECONDS, start, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    start.wait()
    total = sum(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(30)
    return total / THROUGHPUT_SECONDS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=0)
    options = parser.parse_args()
    from benchmarks.interleave import interleaved_best

    variants = setup()
    names = list(variants)
    best = interleaved_best(*variants.values(), rounds=ROUNDS, number=NUMBER)
    cpu: dict[str, float] = {}
    for name, read in variants.items():
        before = server_cpu()
        for _ in range(CPU_CALLS):
            read()
        cpu[name] = (server_cpu() - before) / CPU_CALLS
    plain = names[0]
    print("| variant | client µs/call | × GET | server CPU µs/call | × GET |")
    print("|---|---|---|---|---|")
    for name, time_ in zip(names, best, strict=True):
        per_call = time_ / NUMBER * 1e6
        print(
            f"| {name} | {per_call:.1f} | {time_ / best[0]:.2f} | "
            f"{cpu[name] * 1e6:.1f} | {cpu[name] / cpu[plain]:.2f} |"
        )
    if options.processes:
        for name in names:
            print(f"{name}: {throughput(name, options.processes):,.0f} calls/s")


if __name__ == "__main__":
    main()
