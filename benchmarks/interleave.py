"""Ratios measured by alternating two operations, so a busy machine hits both alike."""

from __future__ import annotations

import gc
from collections.abc import Callable
from time import perf_counter


def interleaved_ratio(
    baseline: Callable[[], object],
    variant: Callable[[], object],
    *,
    rounds: int = 15,
    number: int = 100,
) -> float:
    """Return best(variant) / best(baseline), timing ``number`` calls of each in turns."""
    best = {baseline: float("inf"), variant: float("inf")}
    gc.collect()
    for _ in range(rounds):
        for operation in (baseline, variant):
            start = perf_counter()
            for _ in range(number):
                operation()
            best[operation] = min(best[operation], perf_counter() - start)
    return best[variant] / best[baseline]


def plain_update_save() -> Callable[[], None]:
    """Return an update save of a plain model row: the baseline of the save groups."""
    from benchmarks.benchapp.models import Plain

    row = Plain.objects.create(name="baseline")

    def save() -> None:
        row.score += 1
        row.save()

    return save
