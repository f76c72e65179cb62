"""What a hook adds to one save, against a plain model and the peers.

Every group has a ``plain`` variant measured in the same run; REPORT.md divides by it.
"""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from benchmarks.benchapp import models as m
from benchmarks.interleave import interleaved_ratio, plain_update_save

pytestmark = pytest.mark.django_db

VARIANTS = {
    "plain": m.Plain,
    "django receiver": m.Receiver,
    "signalhooks hook": m.Hooked,
    "signalhooks changed=": m.HookedChanged,
    "django-lifecycle": m.Lifecycle,
    "django-lifecycle changed": m.LifecycleChanged,
    "model-utils FieldTracker": m.FieldTracked,
    "dirtyfields": m.Dirty,
}
if m.LIFECYCLE_HOOKS:
    VARIANTS["django-lifecycle-hooks"] = m.LCHooks
    VARIANTS["django-lifecycle-hooks changed"] = m.LCHooksChanged
LOAD_VARIANTS = {
    "plain": m.Plain,
    "signalhooks 2 tracked fields": m.Tracked,
    "django-lifecycle": m.LifecycleTracked,
    "model-utils FieldTracker": m.FieldTracked,
    "dirtyfields": m.Dirty,
}
if m.LIFECYCLE_HOOKS:
    LOAD_VARIANTS["django-lifecycle-hooks"] = m.LCHooks


@pytest.mark.benchmark(group="update save")
@pytest.mark.parametrize("variant", VARIANTS)
def test_update_save(benchmark, variant):
    instance = VARIANTS[variant].objects.create(name="a")
    instance = type(instance).objects.get(pk=instance.pk)

    def save():
        instance.score += 1
        instance.save()

    benchmark(save)
    assert type(instance).objects.get(pk=instance.pk).score == instance.score
    if not benchmark.disabled:
        benchmark.extra_info["interleaved_ratio"] = interleaved_ratio(plain_update_save(), save)


@pytest.mark.benchmark(group="create save")
@pytest.mark.parametrize("variant", VARIANTS)
def test_create_save(benchmark, variant):
    model = VARIANTS[variant]
    benchmark(lambda: model.objects.create(name="a"))
    assert model.objects.exists()
    if not benchmark.disabled:
        benchmark.extra_info["interleaved_ratio"] = interleaved_ratio(
            lambda: m.Plain.objects.create(name="a"), lambda: model.objects.create(name="a")
        )


@pytest.mark.benchmark(group="delete")
@pytest.mark.parametrize("variant", VARIANTS)
def test_delete(benchmark, variant):
    model = VARIANTS[variant]

    def setup():
        return (model.objects.create(name="a"),), {}

    benchmark.pedantic(lambda instance: instance.delete(), setup=setup, rounds=200)
    assert not model.objects.exists()


@pytest.fixture(scope="module")
def loaded(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        for model in LOAD_VARIANTS.values():
            model.objects.bulk_create(
                [model(name=f"n{i}", status="new", score=i) for i in range(10_000)]
            )
    yield
    with django_db_blocker.unblock():
        for model in LOAD_VARIANTS.values():
            model.objects.all().delete()


@pytest.mark.benchmark(group="load 10,000 rows")
@pytest.mark.parametrize("variant", LOAD_VARIANTS)
def test_load_rows(benchmark, variant, loaded):
    model = LOAD_VARIANTS[variant]
    rows = benchmark.pedantic(lambda: list(model.objects.all()), rounds=5, iterations=1)
    assert len(rows) == 10_000
    if not benchmark.disabled:
        benchmark.extra_info["interleaved_ratio"] = interleaved_ratio(
            lambda: list(m.Plain.objects.all()),
            lambda: list(model.objects.all()),
            rounds=7,
            number=1,
        )
    del rows
    gc.collect()
    tracemalloc.start()
    rows = list(model.objects.all())
    assert len(rows) == 10_000
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    benchmark.extra_info["peak_bytes"] = peak
