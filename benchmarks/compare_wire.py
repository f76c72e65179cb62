"""The flush's request (one EVALSHA, its reply read) packed and read four ways, in CPU
instructions under callgrind: why ``signalhooks.wire`` packs with hiredis and, on its hot
path, reads with a ``hiredis.Reader`` instead of redis-py's ``read_response``.

Usage: python -m benchmarks.compare_wire   (needs valgrind and a redis-server)

Every variant sends the same command, the autocommit rule save's flush call (12 str
arguments), on one connection held open, NUMBER times inside one ``operator.call``
(callgrind collects only there, GC off, after a warm-up):

* ``hiredis.pack_command`` + redis-py's ``send_packed_command`` and ``read_response``
  (hiredis' reader inside redis-py): the flush everywhere but its hot path;
* the connection's own ``pack_commands`` (hiredis too, through its encoder), same send
  and read;
* ``hiredis.pack_command``, ``sendall`` on the connection's socket and a
  ``hiredis.Reader`` fed by ``recv``: the flush's hot path;
* redis-py's pure-Python packer and RESP2 parser (no hiredis);
* ``wire.Pipeline.execute()`` as shipped (held connection, lease checks, hot path);
* ``client.pipeline(transaction=False)``, for reference.
"""

from __future__ import annotations

import gc
import json
import operator
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

NUMBER = 200
SCRIPT = "#!lua\nreturn 0"


def _variants(url: str) -> dict[str, Callable[[], object]]:
    import hiredis
    import redis
    from redis._parsers import _RESP2Parser
    from redis.connection import PythonRespSerializer
    from redis.exceptions import ResponseError

    from signalhooks.wire import Pipeline

    client = redis.Redis.from_url(url)
    sha = client.script_load(SCRIPT)
    command = (
        "EVALSHA", sha, "1", ":1:signalhooks:epoch", ":1:", ":1:signalhooks:tag:",
        "0", "\0", "2", "2", "author:7\0site", ":1:entry:1\0:1:entries",
    )  # fmt: skip

    def connection(**kwargs: Any) -> Any:
        opened = redis.Connection(host=client.connection_pool.connection_kwargs["host"],
                                  port=client.connection_pool.connection_kwargs["port"],
                                  **kwargs)  # fmt: skip
        opened.connect()
        return opened

    kept = connection()

    def kept_round_trip() -> object:
        kept.send_packed_command((hiredis.pack_command(command),))
        return kept.read_response()

    packs = connection()

    def redis_py_pack() -> object:
        packs.send_packed_command((b"".join(packs.pack_commands([command])),))
        return packs.read_response()

    alone = connection()
    sock = alone._sock
    reader = hiredis.Reader(replyError=ResponseError)

    def hiredis_alone(owner: Any = alone) -> object:  # owner: keeps the socket open
        sock.sendall(hiredis.pack_command(command))
        reply = reader.gets()
        while reply is False:
            reader.feed(sock.recv(65536))
            reply = reader.gets()
        return reply

    pure = connection(
        parser_class=_RESP2Parser, command_packer=PythonRespSerializer(6000, kept.encoder.encode)
    )

    def no_hiredis() -> object:
        pure.send_packed_command((b"".join(pure.pack_commands([command])),))
        return pure.read_response()

    def wire_pipeline() -> object:
        pipeline = Pipeline(client)
        pipeline.execute_command(*command)
        return pipeline.execute()

    def redis_py_pipeline() -> object:
        pipeline = client.pipeline(transaction=False)
        pipeline.execute_command(*command)
        return pipeline.execute()

    return {
        "hiredis.pack_command + redis-py send_packed_command/read_response": kept_round_trip,
        "redis-py pack_commands + send_packed_command/read_response": redis_py_pack,
        "hiredis.pack_command + sendall + hiredis.Reader (the hot path)": hiredis_alone,
        "redis-py without hiredis (Python packer and parser)": no_hiredis,
        "wire.Pipeline.execute() as shipped": wire_pipeline,
        "redis-py pipeline(transaction=False)": redis_py_pipeline,
    }


def child(out: Path, url: str) -> None:
    labels = []
    for label, run in _variants(url).items():
        assert run() in (0, [0])
        for _ in range(20):
            run()

        def batch(run: Callable[[], object] = run) -> None:
            for _ in range(NUMBER):
                run()

        gc.collect()
        gc.disable()
        try:
            operator.call(batch)
        finally:
            gc.enable()
        labels.append(label)
    out.write_text(json.dumps(labels))


def parent() -> None:
    from tests.redis_server import RedisServer

    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("benchmarks.compare_wire needs valgrind (apt-get install valgrind).")
    server = RedisServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            labels_file = Path(tmp) / "labels.json"
            done = subprocess.run(
                [
                    valgrind,
                    "--tool=callgrind",
                    "--collect-atstart=no",
                    "--toggle-collect=_operator_call",
                    "--dump-after=_operator_call",
                    f"--callgrind-out-file={tmp}/callgrind.out",
                    sys.executable,
                    "-m",
                    "benchmarks.compare_wire",
                    "--child",
                    str(labels_file),
                    server.url,
                ],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0 or not labels_file.exists():
                raise SystemExit(f"callgrind run failed:\n{done.stdout}\n{done.stderr[-3000:]}")
            from benchmarks.instructions import _total

            dumps = sorted(
                Path(tmp).glob("callgrind.out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1])
            )
            labels = json.loads(labels_file.read_text())
            totals = [_total(d) for d in dumps]
    finally:
        server.stop()
    print("| the flush's request, one EVALSHA | CPU instructions per round trip |")
    print("| --- | ---: |")
    for label, total in zip(labels, totals, strict=True):
        print(f"| {label} | {total / NUMBER:,.0f} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(Path(sys.argv[2]), sys.argv[3])
    else:
        parent()
