"""Lua scripts sent by SHA: the script text crosses the network only when a server lacks it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

from .wire import Pipeline


class Script:
    """A Lua script run by EVALSHA; EVAL (which caches it) when the server lacks it."""

    def __init__(self, text: str) -> None:
        # The shebang (Redis 7) makes this a script that may write, which a replica
        # refuses before running it (READONLY). Without it a primary that a failover
        # demoted would still answer reads: its copy of the epoch names its own run_id,
        # so it would serve values whose deletes it acknowledged and then lost.
        self.text = "#!lua\n" + text
        self.sha = hashlib.sha1(self.text.encode()).hexdigest()

    def __call__(self, redis: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # First use on this server (or it restarted): one more round trip, once.
            return redis.eval(self.text, len(keys), *keys, *args)

    def queue(
        self, pipeline: Pipeline, keys: Sequence[str], args: Sequence[str], *, by_sha: bool
    ) -> None:
        """Add a call to ``pipeline``: by SHA, or with the text (after a NoScriptError)."""
        if by_sha:
            pipeline.execute_command("EVALSHA", self.sha, str(len(keys)), *keys, *args)
        else:
            pipeline.execute_command("EVAL", self.text, str(len(keys)), *keys, *args)
