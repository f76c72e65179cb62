"""Count the CPU instructions of each benchmark operation with callgrind (deterministic).

Usage: python -m benchmarks.instructions [--goals] benchmarks/results/<name>.json
(``make bench-instructions``; ``--goals`` measures only the groups of the goals below).

Writes ``benchmarks/results/<name>.instructions.json``, which ``benchmarks.report``
adds to REPORT.md. Wall-clock ratios of a few percent drown in the noise of a shared
machine; instruction counts do not move from run to run. They count the work done in
the Python process (SQLite in memory runs there too), not time spent waiting for
Redis. Needs ``valgrind`` and a CPython with its symbol table (pyenv and distribution
builds have one). Always SQLite in memory, whatever ``DATABASE_URL`` says.

How: the script re-runs itself under ``valgrind --tool=callgrind`` with collection
switched on only inside ``operator.call`` (C function ``_operator_call``) and a
profile dumped after each call; every measured batch of operations runs inside one
``operator.call``, with the garbage collector off and after a warm-up.
"""

from __future__ import annotations

import gc
import json
import operator
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

UPDATE, CHANGED, LOAD_GOAL = "update save", "update save, tracked field changed", "load 2,000 rows"
TRACKED = "signalhooks 2 tracked fields"

# group -> number of operations per measured batch
COUNTS = {
    UPDATE: 200,
    CHANGED: 200,
    LOAD_GOAL: 1,
    "create save": 200,
    "delete": 200,
    "load 10,000 rows": 1,
    "autocommit save with a rule": 200,
    "100 saves in one transaction": 3,
    "comment create": 200,
}


#: (group, our variant, the peers shown next to it, limit as a ratio to plain)
GOALS = [
    (
        UPDATE,
        "signalhooks hook",
        ["django receiver", "django-lifecycle-hooks", "django-lifecycle"],
        1.025,
    ),
    (
        CHANGED,
        "signalhooks changed=",
        ["django-lifecycle-hooks changed", "django-lifecycle changed"],
        1.045,
    ),
    (LOAD_GOAL, TRACKED, ["django-lifecycle-hooks", "django-lifecycle"], 1.05),
    (
        "autocommit save with a rule",
        "signalhooks rule (keys+tags)",
        ["plain + one round trip (by hand)"],
        1.15,
    ),
    (
        "100 saves in one transaction",
        "signalhooks rule (keys+tags)",
        ["plain + one round trip (by hand)"],
        1.03,
    ),
    (
        "comment create",
        "signalhooks counter + touch",
        ["django receiver (one UPDATE of the post)", "plain + one UPDATE of the post (by hand)"],
        1.6,
    ),
]
#: The load goal's peak memory (tracemalloc) as a ratio to plain.
MEMORY_LIMIT = 1.10
CHANGED_VARIANTS = {
    "plain": "Plain",
    "signalhooks changed=": "HookedChanged",
    "django-lifecycle changed": "LifecycleChanged",
    "django-lifecycle-hooks changed": "LCHooksChanged",
}


def _peak(run: Callable[[], object]) -> int:
    """Return the tracemalloc peak of one ``run()``, in bytes."""
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        result = run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del result
    return peak


def _measure(run: Callable[[], object], number: int, warmup: int) -> None:
    for _ in range(warmup):
        run()

    def batch() -> None:
        for _ in range(number):
            run()

    gc.collect()
    gc.disable()
    try:
        operator.call(batch)  # callgrind collects inside this call only
    finally:
        gc.enable()


def child(out: Path, goals_only: bool = False) -> None:
    """Run every operation once per variant, inside operator.call (under callgrind)."""
    os.environ.pop("DATABASE_URL", None)  # never anything but SQLite in memory
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    os.environ["SIGNALHOOKS_BENCH_UNCOUNTED"] = "1"  # plain redis-py connections
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    from benchmarks import operations as ops
    from benchmarks.benchapp import models as m

    labels: list[tuple[str, str, int]] = []
    peaks: dict[str, int] = {}

    def measure(group: str, variant: str, build: Callable[[], Callable[[], object]]) -> None:
        number = COUNTS[group]
        run = build()
        _measure(run, number, warmup=2 if number < 10 else 20)
        labels.append((group, variant, number))

    for variant, model in ops.SAVE_VARIANTS.items():
        if model is not None:
            measure(UPDATE, variant, lambda model=model: ops.update_save(model))
    for variant, name in CHANGED_VARIANTS.items():
        model = getattr(m, name, None)  # django-lifecycle-hooks needs Python 3.12
        if model is not None:
            measure(CHANGED, variant, lambda model=model: ops.update_save_changing(model))
    for variant, model in ops.LOAD_VARIANTS.items():
        if model is not None:
            ops.fill(model, 2000)
            measure(LOAD_GOAL, variant, lambda model=model: ops.load(model))
            peaks[variant] = min(_peak(ops.load(model)) for _ in range(3))
            model.objects.all().delete()
    group = "autocommit save with a rule"
    measure(group, "plain", lambda: ops.update_save(m.Plain))
    measure(
        group,
        "plain + one round trip (by hand)",
        lambda: ops.update_save(m.Plain, round_trip=True),
    )
    measure(group, "signalhooks rule (keys+tags)", lambda: ops.update_save(m.Ruled))
    group = "100 saves in one transaction"
    measure(group, "plain", lambda: ops.hundred_saves(m.Plain))
    measure(
        group,
        "plain + one round trip (by hand)",
        lambda: ops.hundred_saves(m.Plain, round_trip=True),
    )
    measure(group, "signalhooks rule (keys+tags)", lambda: ops.hundred_saves(m.Ruled))
    post = m.Post.objects.create()
    group = "comment create"
    measure(group, "plain", lambda: ops.create_comment(m.PlainComment, post))
    measure(
        group,
        "plain + one UPDATE of the post (by hand)",
        lambda: ops.create_comment_and_update(post),
    )
    measure(
        group,
        "django receiver (one UPDATE of the post)",
        lambda: ops.create_comment(m.ReceiverComment, post),
    )
    measure(group, "signalhooks counter + touch", lambda: ops.create_comment(m.Comment, post))
    if goals_only:
        out.write_text(json.dumps({"labels": labels, "peaks": peaks}))
        return
    for variant, model in ops.SAVE_VARIANTS.items():
        if model is None:
            continue
        measure("create save", variant, lambda model=model: ops.create_save(model))
        measure("delete", variant, lambda model=model: ops.delete_pool(model, 220))
    for variant, model in ops.LOAD_VARIANTS.items():
        if model is None:
            continue
        ops.fill(model)
        measure("load 10,000 rows", variant, lambda model=model: ops.load(model))
        model.objects.all().delete()
    out.write_text(json.dumps({"labels": labels, "peaks": peaks}))


def _total(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise ValueError(f"{dump}: no totals line")


def goals_table(per_operation: dict[str, dict[str, float]], peaks: dict[str, int]) -> str:
    """Return the goals, ours and the peers' ratios to plain side by side (markdown)."""
    lines = [
        "| figure (ratio to plain, CPU instructions) | signalhooks | peers | goal | verdict |",
        "| --- | ---: | --- | ---: | --- |",
    ]
    for group, ours, peers, limit in GOALS:
        rows = per_operation.get(group, {})
        plain = rows.get("plain")
        if plain is None or ours not in rows:
            continue
        measured = rows[ours] / plain
        shown = ", ".join(f"{p} {rows[p] / plain:.3f}×" for p in peers if p in rows)
        verdict = "met" if measured <= limit else "**missed**"
        lines.append(
            f"| {group}: {ours} | {measured:.3f}× | {shown} | ≤ {limit:.3f}× | {verdict} |"
        )
    if "plain" in peaks and TRACKED in peaks:
        memory = peaks[TRACKED] / peaks["plain"]
        shown = ", ".join(
            f"{p} {peaks[p] / peaks['plain']:.3f}×"
            for p in ("django-lifecycle-hooks", "django-lifecycle")
            if p in peaks
        )
        verdict = "met" if memory <= MEMORY_LIMIT else "**missed**"
        lines.append(
            f"| {LOAD_GOAL}: {TRACKED}, peak memory (tracemalloc) | {memory:.3f}× | {shown} "
            f"| ≤ {MEMORY_LIMIT:.2f}× | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def parent(results: Path, goals_only: bool = False) -> Path:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("benchmarks.instructions needs valgrind (apt-get install valgrind).")
    with tempfile.TemporaryDirectory() as tmp:
        labels_file = Path(tmp) / "labels.json"
        command = [
            valgrind,
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=_operator_call",
            "--dump-after=_operator_call",
            f"--callgrind-out-file={tmp}/callgrind.out",
            sys.executable,
            "-m",
            "benchmarks.instructions",
            "--child",
            str(labels_file),
            *(["--goals"] if goals_only else []),
        ]
        print("running the operations under callgrind (a few minutes) ...", flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not labels_file.exists():
            raise SystemExit(f"callgrind run failed:\n{done.stdout}\n{done.stderr[-3000:]}")
        measured = json.loads(labels_file.read_text())
        labels, peaks = measured["labels"], measured["peaks"]
        dumps = sorted(
            Path(tmp).glob("callgrind.out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1])
        )
        totals = [_total(d) for d in dumps]
        if len(totals) != len(labels) or not all(totals):
            raise SystemExit(
                f"expected {len(labels)} non-empty callgrind dumps, got {totals}: is CPython's "
                "symbol table stripped (no _operator_call)?"
            )
    per_operation: dict[str, dict[str, float]] = {}
    for (group, variant, number), total in zip(labels, totals, strict=True):
        per_operation.setdefault(group, {})[variant] = total / number
    target = results.with_name(results.stem + ".instructions.json")
    target.write_text(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "what": "CPU instructions per operation (callgrind), GC off, SQLite in memory",
                "per_operation": per_operation,
                "peak_bytes": peaks,
            },
            indent=2,
        )
        + "\n"
    )
    print(goals_table(per_operation, peaks))
    print(f"wrote {target}")
    return target


def main(argv: list[str]) -> None:
    args = argv[1:]
    goals_only = "--goals" in args
    args = [a for a in args if a != "--goals"]
    if len(args) == 2 and args[0] == "--child":
        child(Path(args[1]), goals_only)
    elif len(args) == 1:
        parent(Path(args[0]), goals_only)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
