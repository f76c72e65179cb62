"""``{% load signalhooks %}``: the ``{% cached %}`` tag, a template fragment kept by ``cached()``.

::

    {% cached "sidebar" tags="posts author:1" timeout=300 stale=True %}…{% endcached %}

The block is rendered only on a miss, and stored under ``key`` and ``tags`` with
everything ``cached()`` does: leases, tag generations, the epoch, computing once for
concurrent misses, and rendering the block when the cache is down.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from typing import Any

from django import template
from django.template.base import FilterExpression, NodeList, Parser, Token
from django.template.context import Context
from django.utils.safestring import SafeString, mark_safe

from signalhooks.cache import cached

register = template.Library()

#: The keywords the tag takes after the key: ``cached()``'s own.
OPTIONS = ("tags", "timeout", "stale", "early", "cache")
_KEYWORD = re.compile(r"^(\w+)=(.+)$", re.DOTALL)
_USAGE = '{% cached key tags="posts author:1" timeout=300 stale=True %}…{% endcached %}'


class CachedNode(template.Node):
    """A ``{% cached %}`` block: its key, its options, and the template inside it."""

    def __init__(
        self, nodelist: NodeList, key: FilterExpression, options: dict[str, FilterExpression]
    ) -> None:
        self.nodelist = nodelist
        self.key = key
        self.options = options

    def render(self, context: Context) -> SafeString:
        key = self.key.resolve(context)
        if not isinstance(key, str) or not key:
            raise template.TemplateSyntaxError(
                f"{{% cached {self.key.token} %}}: the key is {key!r}; it must be a "
                "non-empty string (a literal or a context variable holding one)."
            )
        values = {name: value.resolve(context) for name, value in self.options.items()}
        kwargs: dict[str, Any] = {"tags": _tags(key, values.get("tags"))}
        if "timeout" in values:
            kwargs["timeout"] = _timeout(key, values["timeout"])
        if "stale" in values:
            kwargs["stale"] = bool(values["stale"])
        if "early" in values:
            kwargs["early"] = _number(key, "early", values["early"])
        if values.get("cache"):
            kwargs["cache"] = str(values["cache"])

        def render_block() -> str:
            # Stored as a plain str; what the block rendered was safe, and stays so.
            return str(self.nodelist.render(context))

        return mark_safe(cached(key, render_block, **kwargs))


def _tags(key: str, value: Any) -> list[str]:
    """Return the tags of ``tags=``: a space-separated string or a list of strings."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, Sequence) and all(isinstance(t, str) and t for t in value):
        return list(value)
    raise template.TemplateSyntaxError(
        f"{{% cached {key!r} tags={value!r} %}}: tags are a space-separated string "
        '(tags="posts author:1") or a list of non-empty strings.'
    )


def _number(key: str, name: str, value: Any) -> float:
    """Return ``value`` as a number of seconds (a number, or a string holding one)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # not a number: refused below
            value = float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return value  # (value == value is False for NaN)
    raise template.TemplateSyntaxError(
        f"{{% cached {key!r} {name}={value!r} %}}: {name} must be a number of seconds."
    )


def _timeout(key: str, value: Any) -> float | None:
    """Return ``timeout=`` for ``cached()``: seconds, or None (never expires)."""
    return None if value is None else _number(key, "timeout", value)


@register.tag("cached")
def do_cached(parser: Parser, token: Token) -> CachedNode:
    """Parse ``{% cached key [tags=…] [timeout=…] [stale=…] [early=…] [cache=…] %}``."""
    bits = token.split_contents()
    if len(bits) < 2 or _KEYWORD.match(bits[1]):
        raise template.TemplateSyntaxError(
            f"{{% {token.contents} %}}: name the key first, e.g. {_USAGE}"
        )
    options: dict[str, FilterExpression] = {}
    for bit in bits[2:]:
        match = _KEYWORD.match(bit)
        if match is None:
            raise template.TemplateSyntaxError(
                f"{{% {token.contents} %}}: {bit!r} is not name=value. After the key the "
                f"tag takes only {', '.join(f'{o}=' for o in OPTIONS)}; build one key "
                'from several values with a filter, e.g. "post:"|add:post.pk.'
            )
        name, value = match.groups()
        if name not in OPTIONS:
            raise template.TemplateSyntaxError(
                f"{{% {token.contents} %}}: unknown option {name}=. Use "
                f"{', '.join(f'{o}=' for o in OPTIONS)}."
            )
        if name in options:
            raise template.TemplateSyntaxError(f"{{% {token.contents} %}}: {name}= is given twice.")
        options[name] = parser.compile_filter(value)
    nodelist = parser.parse(("endcached",))
    parser.delete_first_token()
    return CachedNode(nodelist, parser.compile_filter(bits[1]), options)
