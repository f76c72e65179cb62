"""Run apps of Django's own test suite with signalhooks on every model (run by .ci/run).

Usage: ``python .ci/django_suite.py [app or test label ...]`` with the Python of a
virtualenv that has the project installed (and tblib, which Django's parallel runner
needs to report errors). Downloads the sdist of the installed Django from PyPI into a
temporary directory, starts a redis-server on a free port, and runs Django's
``tests/runtests.py`` (SQLite, ``--parallel 2``) through ``django_suite/run_tests.py``:
every model gets hooks and an ``invalidate()`` rule (django_suite/signalhooks_everywhere).
Any failure not in ``django_suite/known_differences.txt`` fails the run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import django
import redis

HERE = Path(__file__).resolve().parent / "django_suite"
APPS = [
    "basic",
    "delete",
    "delete_regress",
    "m2m_signals",
    "m2m_through",
    "many_to_many",
    "prefetch_related",
    "model_inheritance",
    "composite_pk",
    "defer",
    "defer_regress",
    "update",
    "signals",
    "save_delete_hooks",
    "proxy_models",
    "model_fields",
    "auth_tests",
]
EVENTS = (
    "pre_save",
    "post_save",
    "post_save_on_commit",
    "pre_delete",
    "post_delete",
    "post_delete_on_commit",
)


def django_tests(work: Path) -> Path:
    """Download and unpack the ``tests/`` directory of the installed Django's sdist."""
    version = django.__version__
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", "django"]
        + ["-d", str(work), f"django=={version}"],
        check=True,
    )
    (sdist,) = work.glob("[Dd]jango-*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.name.split("/")[1:2] == ["tests"]]
        archive.extractall(work, members=members, filter="data")
    return work / sdist.name.removesuffix(".tar.gz") / "tests"


def redis_server(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    executable = shutil.which("redis-server")
    if executable is None:
        sys.exit("Django's suite under signalhooks needs a redis-server on PATH.")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(500):
        try:
            client.ping()
            return process, url
        except redis.ConnectionError:
            time.sleep(0.02)
    process.kill()
    sys.exit(f"redis-server did not start on port {port}")


def main() -> int:
    labels = sys.argv[1:] or APPS
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="signalhooks-django-suite-") as tmp:
        work = Path(tmp)
        tests = django_tests(work)
        print(f"Django {django.__version__}: sdist ready in {time.monotonic() - started:.0f}s")
        server, url = redis_server(work)
        try:
            env = {
                **os.environ,
                "SIGNALHOOKS_SUITE_REDIS_URL": url,
                "SIGNALHOOKS_SUITE_APPS": " ".join(labels),
            }
            status = subprocess.run(
                [sys.executable, str(HERE / "run_tests.py"), "--settings"]
                + ["signalhooks_suite_settings", "--parallel", "2", "--noinput", *labels],
                cwd=tests,
                env=env,
            ).returncode
            calls = {
                k.decode(): int(v)
                for k, v in redis.Redis.from_url(url).hgetall("django-suite:hook-calls").items()
            }
        finally:
            server.terminate()
            server.wait()
    print(f"signalhooks hooks called: {calls}")
    idle = [event for event in EVENTS if not calls.get(event)]
    if labels == APPS and idle:
        print(f"the hooks of {idle} never ran: signalhooks was not active")
        status = status or 1
    print(f"Django's suite under signalhooks: {time.monotonic() - started:.0f}s")
    return status


if __name__ == "__main__":
    sys.exit(main())
