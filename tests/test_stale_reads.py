"""cached_from() and the DEBUG warning for a compute holding a row read before the lookup."""

from __future__ import annotations

import functools
import threading
import warnings

import pytest
from django.http import Http404
from django.shortcuts import get_object_or_404

from signalhooks import StaleReadWarning, cached, cached_from, invalidate, is_cached
from tests.cacheapp.models import Entry
from tests.db_threads import close_thread_connections

# Real commits: invalidation waits for them.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def debug(settings):
    settings.DEBUG = True


@pytest.fixture
def entry():
    invalidate(Entry, keys=["entry:{pk}"])
    return Entry.objects.create(title="first", slug="a")


def rename(pk, title):
    """Commit a new title from another connection, as another request would."""

    def write():
        try:
            Entry.objects.filter(pk=pk).update(title=title)
            Entry.objects.get(pk=pk).save()  # the save runs the rule: "entry:<pk>" goes
        finally:
            close_thread_connections()

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()


def stale_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [w for w in caught if issubclass(w.category, StaleReadWarning)]


# -- what the lease protects, and what it cannot -------------------------------------------


def test_row_loaded_before_the_lookup_is_stored_stale(entry):
    # What the warning is about: the row is read, a change commits (and its invalidation
    # runs) before cached() looks up, so no lease sees it; the old title is stored.
    loaded = Entry.objects.get(pk=entry.pk)
    rename(entry.pk, "second")
    assert cached(f"entry:{entry.pk}", lambda: loaded.title) == "first"
    assert cached(f"entry:{entry.pk}", lambda: "recomputed") == "first"  # stale, kept


def test_cached_from_loads_after_the_lookup(entry):
    rename(entry.pk, "second")  # the same moment as above: before the lookup
    loads = []

    def load():
        loads.append(1)
        return Entry.objects.get(pk=entry.pk)

    def render(row):
        return row.title

    assert cached_from(f"entry:{entry.pk}", load, render) == "second"
    assert cached_from(f"entry:{entry.pk}", load, render) == "second"
    assert loads == [1]  # a hit loads nothing


def test_cached_from_commit_after_the_load_is_not_served(entry):
    key = f"entry:{entry.pk}"

    def render(row):
        rename(row.pk, "second")  # commits while the value is being made
        return row.title

    assert cached_from(key, lambda: Entry.objects.get(pk=entry.pk), render) == "first"
    assert not is_cached(key)  # the invalidation cancelled the lease: nothing stored
    assert cached_from(key, lambda: Entry.objects.get(pk=entry.pk), lambda r: r.title) == "second"


def test_cached_from_load_raising_stores_nothing(entry):
    def load():
        return get_object_or_404(Entry, slug="missing")

    with pytest.raises(Http404):
        cached_from("entry:missing", load, str, tags=["entries"], timeout=60)
    assert not is_cached("entry:missing", tags=["entries"])
    assert cached_from("entry:missing", lambda: "now", str.upper, cache="locmem") == "NOW"


# -- the DEBUG warning ---------------------------------------------------------------------


def test_warning_names_the_variable_the_model_and_the_fix(debug, entry):
    post = Entry.objects.get(pk=entry.pk)

    def render():
        return post.title

    value, caught = stale_warnings(lambda: cached("page", render))
    assert value == "first"
    (warning,) = caught
    message = str(warning.message)
    assert "cached('page', test_warning_names_the_variable_the_model_and_the_fix." in message
    assert "`post`, a variable" in message
    assert "render() closes over, is a cacheapp.Entry instance" in message
    assert "cached_from('page', load=lambda: Model.objects.get(pk=pk)" in message
    assert warning.filename == __file__  # the line that called cached()


def test_warning_is_an_error_under_the_test_settings(debug, entry):
    loaded = Entry.objects.get(pk=entry.pk)
    with pytest.raises(StaleReadWarning, match="`loaded`"):
        cached("page", lambda: loaded.title)
    assert not is_cached("page")  # raised before computing: nothing stored


@pytest.mark.parametrize(
    "make, where",
    [
        (lambda row: functools.partial(lambda r: r.title, row), "argument 1 of functools.partial"),
        (lambda row: functools.partial(lambda *, r: r.title, r=row), "keyword argument `r`"),
        (lambda row: row.__str__, "`self` of the bound method"),
        (lambda row: lambda r=row: r.title, "`r`, a default argument"),
        (lambda row: lambda *, r=row: r.title, "`r`, a default argument"),
        (lambda row: lambda rows=[row]: rows, "a list holding a cacheapp.Entry instance"),
        (lambda row: lambda c={"post": row}: c, "a dict holding a cacheapp.Entry instance"),
    ],
)
def test_warning_finds_rows_in_arguments_methods_and_containers(debug, entry, make, where):
    _, caught = stale_warnings(lambda: cached("page", make(Entry.objects.get(pk=entry.pk))))
    assert len(caught) == 1
    assert where in str(caught[0].message)


def test_warning_follows_functions_the_compute_closes_over(debug, entry):
    row = Entry.objects.get(pk=entry.pk)

    def render():
        return row.title

    def page():
        return render()

    wrapped = functools.partial(page)
    _, caught = stale_warnings(lambda: cached("page", wrapped))
    assert "`row`, a variable render() closes over" in str(caught[0].message)
    # cached_from's render is followed too: a row it closes over is read too early.
    _, caught = stale_warnings(lambda: cached_from("other", lambda: 1, lambda _: render()))
    assert "`row`, a variable render() closes over" in str(caught[0].message)


def test_warning_an_evaluated_queryset_but_not_a_lazy_one(debug, entry):
    lazy = Entry.objects.all()
    evaluated = Entry.objects.all()
    list(evaluated)
    _, caught = stale_warnings(lambda: cached("lazy", lambda: [e.title for e in lazy]))
    assert caught == []
    _, caught = stale_warnings(lambda: cached("evaluated", lambda: [e.title for e in evaluated]))
    assert "`evaluated`" in str(caught[0].message)
    assert "an evaluated QuerySet of cacheapp.Entry" in str(caught[0].message)


def test_no_warning_for_correct_usage(debug, entry):
    pk, unsaved = entry.pk, Entry(title="draft", slug="d")  # unsaved: nothing was read

    def inside():
        return Entry.objects.get(pk=pk).title

    def recursive(n=3):
        return n if n == 0 else recursive(n - 1)  # closes over itself

    def chain():
        first = lambda: entry.title  # noqa: E731 - deeper than the check follows
        second = lambda: first()  # noqa: E731
        third = lambda: second()  # noqa: E731
        return lambda: third()

    def not_yet():
        return "v" if pk else late  # `late`: a cell still empty when cached() looks

    computes = [
        inside,
        lambda: unsaved.title,
        lambda: [pk, "text", 1, (2,), {"a": 1}],
        lambda plain=("text", [unsaved]): plain,  # a container without a loaded row
        recursive,
        chain(),
        str,
        functools.partial(str, "x"),
        not_yet,
    ]
    for n, compute in enumerate(computes):
        _, caught = stale_warnings(lambda c=compute, n=n: cached(f"ok:{n}", c))
        assert caught == [], caught[0].message
    _, caught = stale_warnings(lambda: cached_from("ok", lambda: Entry.objects.get(pk=pk), str))
    assert caught == []
    late = entry  # noqa: F841 - assigned after the lookups on purpose


def test_no_warning_on_a_hit_or_with_debug_off(settings, entry):
    row = Entry.objects.get(pk=entry.pk)
    settings.DEBUG = False
    _, caught = stale_warnings(lambda: cached("page", lambda: row.title))
    assert caught == []
    settings.DEBUG = True
    _, caught = stale_warnings(lambda: cached("page", lambda: row.title))
    assert caught == []  # a hit computes nothing, so it checks nothing
