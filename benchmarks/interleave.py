"""Ratios measured by alternating operations, so a busy machine hits them all alike."""

from __future__ import annotations

import gc
from collections.abc import Callable
from time import perf_counter


def interleaved_best(
    *operations: Callable[[], object], rounds: int = 15, number: int = 100
) -> list[float]:
    """Return the best (least disturbed) time of ``number`` calls of each operation.

    The operations are timed in turns, ``rounds`` batches each; with all of them
    timed in turns, load from other processes slows them alike instead of one.
    """
    best = [float("inf")] * len(operations)
    gc.collect()
    for _ in range(rounds):
        for index, operation in enumerate(operations):
            start = perf_counter()
            for _ in range(number):
                operation()
            best[index] = min(best[index], perf_counter() - start)
    return best


def interleaved_ratio(
    baseline: Callable[[], object],
    variant: Callable[[], object],
    *,
    rounds: int = 15,
    number: int = 100,
) -> float:
    """Return best(variant) / best(baseline), timing ``number`` calls of each in turns."""
    base, measured = interleaved_best(baseline, variant, rounds=rounds, number=number)
    return measured / base
