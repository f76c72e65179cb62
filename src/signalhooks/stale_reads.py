"""The DEBUG check of ``cached()``: a compute that holds a row loaded before the lookup.

The lease that ``cached()`` takes on a miss protects what the compute reads *after*
the lookup. A model instance the compute closes over was read before it: a change
committed in between is invalidated before the lease exists, and the value computed
from the old row is then stored under a valid lease, stale until it expires. This
module names such instances. It runs only with ``settings.DEBUG`` and only on a miss
(``cached()`` calls it after its hit path has returned), so a hit never pays for it.
"""

from __future__ import annotations

import functools
import sys
import types
import warnings
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db.models import Model, QuerySet
from django.dispatch import receiver

__all__ = ["StaleReadWarning", "warn_stale_reads"]

#: How deep to follow functions the compute closes over (``lambda: render(post)`` is 1).
_DEPTH = 3
_CONTAINERS = (list, tuple, set, frozenset, dict)
_FOLLOWED = (types.FunctionType, types.MethodType, functools.partial)


#: ``settings.DEBUG``, read once and again after it changes: a read through Django's
#: LazySettings costs about 0.6 µs, which a miss with DEBUG off should not pay.
_debug: bool | None = None


class StaleReadWarning(UserWarning):
    """A ``cached()`` compute holds a row read before the lookup (``settings.DEBUG`` only)."""


def warn_stale_reads(key: str, compute: object) -> None:
    """Warn when ``compute`` holds a model instance loaded before ``cached(key, ...)`` ran.

    Looks at what the compute carries with it: the variables it closes over, its
    default arguments, a bound method's ``self``, a ``functools.partial``'s arguments,
    and the same in the functions it closes over (a few levels deep).
    """
    debug = _debug
    if debug is None:
        debug = _read_debug()
    if not debug:
        return
    found = list(_held(compute, _name(compute), _DEPTH, set()))
    if not found:
        return
    what = "; ".join(f"{where} is {describe}" for where, describe in found)
    warnings.warn(
        f"cached({key!r}, {_name(compute, '__qualname__')}): {what}, loaded before cached() "
        "was called. "
        "cached() protects only what the compute reads after its lookup: a change "
        "committed in between is invalidated before the lookup's lease exists, and the "
        "value computed from the old row is stored, stale until it expires. Load the row "
        "inside the compute: pass its key (pk, slug) instead and use "
        f"cached_from({key!r}, load=lambda: Model.objects.get(pk=pk), render=render), "
        "or read it in the compute itself.",
        StaleReadWarning,
        stacklevel=_caller_level(),
    )


def _read_debug() -> bool:
    global _debug
    _debug = bool(settings.DEBUG)
    return _debug


@receiver(setting_changed, dispatch_uid="signalhooks.stale_reads.debug")
def _debug_changed(*, setting: str, **kwargs: Any) -> None:
    global _debug
    if setting == "DEBUG":
        _debug = None


def _caller_level() -> int:
    """Return the ``stacklevel`` of the first frame outside signalhooks (the user's call)."""
    level, frame = 1, sys._getframe(1)  # our caller is stack level 1 of warnings.warn
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        "signalhooks."
    ):
        level, frame = level + 1, frame.f_back
    return level


def _name(func: object, attribute: str = "__name__") -> str:
    if isinstance(func, functools.partial):
        return f"functools.partial({_name(func.func, attribute)}, ...)"
    return f"{getattr(func, attribute, type(func).__name__)}()"


def _held(func: object, name: str, depth: int, seen: set[int]) -> Iterator[tuple[str, str]]:
    """Yield (where, what) for each loaded row ``func`` holds, following held functions."""
    if id(func) in seen:
        return
    seen.add(id(func))
    for where, variable, value in _carried(func, name):
        describe = _loaded(value)
        if describe is not None:
            yield where, describe
        elif depth > 1 and isinstance(value, _FOLLOWED):
            yield from _held(value, f"{variable}()", depth - 1, seen)


def _carried(func: object, name: str) -> Iterator[tuple[str, str, Any]]:
    """Yield (where, variable, value) for what ``func`` carries: cells, defaults, arguments."""
    if isinstance(func, functools.partial):
        for i, value in enumerate(func.args, 1):
            yield f"argument {i} of {name}", f"argument {i}", value
        for keyword, value in func.keywords.items():
            yield f"the keyword argument `{keyword}` of {name}", keyword, value
        yield f"the function of {name}", _name(func.func)[:-2], func.func
        return
    if isinstance(func, types.MethodType):
        yield f"`self` of the bound method {name}", "self", func.__self__
        func = func.__func__
    if not isinstance(func, types.FunctionType):
        return
    code = func.__code__
    for variable, cell in zip(code.co_freevars, func.__closure__ or (), strict=True):
        try:
            value = cell.cell_contents
        except ValueError:  # a variable assigned after the function was defined
            continue
        yield f"`{variable}`, a variable {name} closes over,", variable, value
    positional = code.co_varnames[: code.co_argcount]
    defaults = zip(positional[::-1], (func.__defaults__ or ())[::-1], strict=False)
    for variable, value in [*defaults, *(func.__kwdefaults__ or {}).items()]:
        yield f"`{variable}`, a default argument of {name},", variable, value


def _loaded(value: Any) -> str | None:
    """Describe ``value`` if it is (or directly holds) a row read from the database."""
    found = _row(value)
    if found is not None or not isinstance(value, _CONTAINERS):
        return found
    items = value.values() if isinstance(value, dict) else value
    for item in items:
        found = _row(item)
        if found is not None:
            return f"a {type(value).__name__} holding {found}"
    return None


def _row(value: Any) -> str | None:
    if isinstance(value, Model):
        if value._state.adding:
            return None  # built in memory, not loaded
        return f"a {value._meta.label} instance"
    if isinstance(value, QuerySet) and value._result_cache is not None:
        # A lazy QuerySet is evaluated inside the compute, under the lease: fine.
        return f"an evaluated QuerySet of {value.model._meta.label}"
    return None
