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
    """Return best(variant) / best(baseline), timing ``number`` calls of each in turns.

    The best (least disturbed) of ``rounds`` batches of each; with both timed in
    turns, load from other processes slows both alike instead of one of them.
    """
    best = [float("inf"), float("inf")]
    gc.collect()
    for _ in range(rounds):
        for index, operation in enumerate((baseline, variant)):
            start = perf_counter()
            for _ in range(number):
                operation()
            best[index] = min(best[index], perf_counter() - start)
    return best[1] / best[0]
