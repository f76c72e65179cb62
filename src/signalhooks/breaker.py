"""A circuit breaker per cache alias: after a failure, skip the cache for a short while.

A hung Redis makes every call wait out the socket timeout. Once a call failed, the
breaker opens for ``SIGNALHOOKS["BREAKER_SECONDS"]``: ``cached()`` computes without
asking the cache and invalidations go straight to the retry store. The first call
after that tries the cache again and closes the breaker when it works.
"""

from __future__ import annotations

import logging
import time

from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .conf import conf

logger = logging.getLogger("signalhooks")

#: Errors that mean the server is down, unreachable or hung (django-redis wraps them).
_OUTAGES = (ConnectionInterrupted, RedisConnectionError, RedisTimeoutError, OSError)

#: At most one failure log per cache alias and this many seconds.
LOG_INTERVAL = 60.0

#: Cache alias -> monotonic time until which it is skipped.
_open_until: dict[str, float] = {}
#: Cache alias -> monotonic time of the last failure logged.
_logged_at: dict[str, float] = {}


def is_open(alias: str) -> bool:
    """Return whether cache ``alias`` failed less than ``BREAKER_SECONDS`` ago."""
    until = _open_until.get(alias)
    return until is not None and time.monotonic() < until


def failed(alias: str, doing: str, error: BaseException) -> None:
    """Log a failure unless one was logged recently; open the breaker if the cache is out.

    Only an unreachable or silent server opens it: a value that cannot be pickled
    must not switch the cache off for everyone.
    """
    now = time.monotonic()
    if isinstance(error, _OUTAGES):
        _open_until[alias] = now + float(conf.BREAKER_SECONDS)
    last = _logged_at.get(alias)
    if last is None or now - last >= LOG_INTERVAL:
        _logged_at[alias] = now
        logger.error(
            "signalhooks: %s on cache %r failed (%s: %s)%s. "
            "Reads compute, invalidations wait in the retry store.",
            doing,
            alias,
            type(error).__name__,
            error,
            f"; skipping it for {conf.BREAKER_SECONDS}s" if alias in _open_until else "",
        )


def succeeded(alias: str) -> None:
    """Close the breaker of ``alias`` after a call that worked."""
    if _open_until.pop(alias, None) is not None:
        _logged_at.pop(alias, None)
        logger.warning("signalhooks: cache %r answers again.", alias)


def reset() -> None:
    """Close every breaker (the test suite starts each test with them closed)."""
    _open_until.clear()
    _logged_at.clear()
