"""What a hook adds to one save, one delete and one load, against a plain model and the peers.

Every group has a ``plain`` variant measured in the same run; REPORT.md divides by
it. With timing on, each variant is also timed in turns with plain
(``interleaved_ratio`` in extra_info), which is what the targets are checked on.
"""

from __future__ import annotations

import gc
import time
import tracemalloc

import pytest

from benchmarks import operations as ops
from benchmarks.benchapp import models as m
from benchmarks.interleave import interleaved_ratio

pytestmark = pytest.mark.django_db


def model_of(variants, variant):
    model = variants[variant]
    reason = ops.skip_reason(model)
    if reason:
        pytest.skip(reason)
    return model


@pytest.mark.benchmark(group="update save")
@pytest.mark.parametrize("variant", ops.SAVE_VARIANTS)
def test_update_save(benchmark, variant):
    model = model_of(ops.SAVE_VARIANTS, variant)
    save = ops.update_save(model)
    benchmark(save)
    row = model.objects.get()
    assert row.score > 0  # every save reached the database
    if not benchmark.disabled:
        benchmark.extra_info["interleaved_ratio"] = interleaved_ratio(
            ops.update_save(m.Plain), save, rounds=20
        )


@pytest.mark.benchmark(group="create save")
@pytest.mark.parametrize("variant", ops.SAVE_VARIANTS)
def test_create_save(benchmark, variant):
    model = model_of(ops.SAVE_VARIANTS, variant)
    create = ops.create_save(model)
    benchmark(create)
    assert model.objects.exists()
    if not benchmark.disabled:
        benchmark.extra_info["interleaved_ratio"] = interleaved_ratio(
            ops.create_save(m.Plain), create, rounds=20
        )


@pytest.mark.benchmark(group="delete")
@pytest.mark.parametrize("variant", ops.SAVE_VARIANTS)
def test_delete(benchmark, variant):
    model = model_of(ops.SAVE_VARIANTS, variant)
    rounds = 1 if benchmark.disabled else 300  # disabled: pedantic() runs once
    benchmark.pedantic(ops.delete_pool(model, rounds), rounds=rounds, iterations=1)
    assert not model.objects.exists()
    if not benchmark.disabled:
        rounds, number = 15, 50
        benchmark.extra_info["interleaved_ratio"] = interleaved_ratio(
            ops.delete_pool(m.Plain, rounds * number),
            ops.delete_pool(model, rounds * number),
            rounds=rounds,
            number=number,
        )
        assert not model.objects.exists()


@pytest.fixture(scope="module")
def loaded(request, django_db_setup, django_db_blocker):
    """Fill each load variant's table once with the same rows; return how many.

    10,000 when timing; with ``--benchmark-disable`` (CI) 1,000 keep the run short.
    """
    rows = 1000 if request.config.getoption("benchmark_disable") else ops.LOAD_ROWS
    with django_db_blocker.unblock():
        for model in ops.LOAD_VARIANTS.values():
            if model is not None:
                ops.fill(model, rows)
    yield rows
    with django_db_blocker.unblock():
        for model in ops.LOAD_VARIANTS.values():
            if model is not None:
                model.objects.all().delete()


def peak_memory(load, expected: int) -> tuple[int, int]:
    """Return ``(peak, retained)`` bytes allocated by one load, measured apart from timing."""
    gc.collect()
    tracemalloc.start()
    try:
        rows = load()
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(rows) == expected
    return peak, retained


@pytest.mark.benchmark(group="load 10,000 rows")
@pytest.mark.parametrize("variant", ops.LOAD_VARIANTS)
def test_load_rows(benchmark, variant, loaded):
    model = model_of(ops.LOAD_VARIANTS, variant)
    load = ops.load(model)
    rows = benchmark.pedantic(load, rounds=1 if benchmark.disabled else 10, warmup_rounds=1)
    assert len(rows) == loaded
    del rows
    # Memory: a separate, untimed load (tracemalloc slows allocation down).
    peak, retained = peak_memory(load, loaded)
    benchmark.extra_info["peak_bytes"] = peak
    benchmark.extra_info["retained_bytes"] = retained
    if not benchmark.disabled:
        benchmark.extra_info["interleaved_ratio"] = interleaved_ratio(
            ops.load(m.Plain), load, rounds=10, number=1
        )


REGISTRATION_MODELS = 600


def _many_models(count):
    """Return ``count`` fresh model classes in an app registry of their own (no tables)."""
    from django.apps.registry import Apps
    from django.db import models

    isolated = Apps([])
    meta = type("Meta", (), {"apps": isolated, "app_label": "benchregistration"})
    return [
        type(
            f"Registered{i}",
            (models.Model,),
            {
                "__module__": __name__,
                "name": models.CharField(max_length=10),
                "status": models.CharField(max_length=10),
                "Meta": meta,
            },
        )
        for i in range(count)
    ]


@pytest.mark.benchmark(group="registration after ready()")
def test_registration_is_linear(benchmark):
    """Hook 600 models after ready() (a changed= hook and a track() each), as autodiscovery does."""
    from django.db.models.signals import post_save as django_post_save

    from signalhooks import post_save, track
    from signalhooks.registry import registry

    created = _many_models(REGISTRATION_MODELS)

    def hook(sender, instance, **kwargs):
        pass

    def register_all():
        with registry.isolated():
            start = time.perf_counter()
            for model in created:
                post_save(model, changed="status")(hook)
                track(model, "name")
            elapsed = time.perf_counter() - start
            assert all(django_post_save.has_listeners(model) for model in created)
        return elapsed

    seconds = benchmark.pedantic(register_all, rounds=1 if benchmark.disabled else 3)
    assert not any(django_post_save.has_listeners(model) for model in created)
    benchmark.extra_info["models"] = REGISTRATION_MODELS
    benchmark.extra_info["seconds"] = round(seconds, 3)
