"""Run the load and fault test: ``python -m loadtest.run --short|--full [--out DIR]``.

Exit status 0 when every check passes, 1 when one fails, 2 when the run itself broke.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dj_database_url

from .load import Site
from .servers import ROOT, Gunicorn, MailWorker, Redis, wait_until

if TYPE_CHECKING:  # checks.py imports models: only after django.setup()
    from .checks import Check

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/signalhooks_loadtest"


@dataclass(frozen=True)
class Form:
    name: str
    baseline: float  # seconds of load before the first fault
    outage: float  # Redis down (killed) or written to after a snapshot
    pause: float  # CLIENT PAUSE
    settle: float  # load between two faults
    readers: int
    workers: int


SHORT = Form("short", baseline=12, outage=5, pause=3, settle=7, readers=2, workers=3)
FULL = Form("full", baseline=40, outage=15, pause=8, settle=20, readers=4, workers=4)
CLAIM_TIMEOUT = 10.0  # seconds; loadtest.settings sets WELCOME_MAIL_CLAIM_TIMEOUT to it
MAIL_DELAY = 0.15  # seconds each welcome mail takes in the worker


def fresh_database(url: str) -> None:
    """Drop and create the database of ``url`` (it is the load test's own)."""
    import psycopg

    config = dj_database_url.parse(url)
    name = config["NAME"]
    admin = psycopg.connect(
        dbname="postgres", host=config["HOST"] or None, port=config["PORT"] or None,
        user=config["USER"] or None, password=config["PASSWORD"] or None, autocommit=True,
    )  # fmt: skip
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def cold_posts() -> dict[int, str]:
    """Create the posts only the driver edits, each during a fault; return {pk: slug}.

    Their pages are read all along but invalidated by nothing else: an invalidation
    lost in a fault leaves them stale for good, where a hot post's next comment would
    hide the loss.
    """
    from django.contrib.auth import get_user_model
    from sample_project.blog.models import Post

    dave = get_user_model()._default_manager.create_user(
        "dave", "dave@sample.signalhooks.test", "sample-password"
    )
    posts = [
        Post.objects.create(title=f"Cold post {n}", slug=f"cold-{n}", body="Quiet.", author=dave)
        for n in range(1, 5)
    ]
    return {p.pk: p.slug for p in posts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="the full run (default: short)")
    parser.add_argument("--short", action="store_true", help="the short run (CI)")
    parser.add_argument("--out", type=Path, help="report folder")
    parser.add_argument(
        "--probe-only", action="store_true", help="only the stale-read probe (no load, no faults)"
    )
    args = parser.parse_args(argv)
    form = FULL if args.full else SHORT
    out = args.out or ROOT / "loadtest" / "results" / (form.name + "-probe" * args.probe_only)
    with tempfile.TemporaryDirectory(prefix="signalhooks-loadtest-") as workdir:
        try:
            return Run(form, Path(workdir), out, args.probe_only).run()
        except Exception:
            traceback.print_exc()
            print("loadtest: the run itself broke (exit 2); no check was made", file=sys.stderr)
            return 2


class Run:
    def __init__(self, form: Form, workdir: Path, out: Path, probe_only: bool = False) -> None:
        self.form = form
        self.probe_only = probe_only
        self.workdir = workdir
        self.out = out
        self.redis = Redis(workdir)
        self.gunicorn = Gunicorn(form.workers, workdir / "gunicorn.log")
        self.worker = MailWorker(MAIL_DELAY, workdir / "worker.log")
        self.database_url = os.environ.get("LOADTEST_DATABASE_URL", DEFAULT_DATABASE_URL)

    def say(self, message: str) -> None:
        print(f"[loadtest {time.strftime('%H:%M:%S')}] {message}", flush=True)

    def run(self) -> int:
        from .load import Recorder

        self.recorder = Recorder()
        try:
            self.set_up()
            self.site = self.make_site()
            if self.probe_only:
                from . import probe

                self.gunicorn.scale(probe.WORKERS)
                time.sleep(3)  # the new workers load the site
            else:
                self.load_with_faults()
            checks = [self.probe()]
            if not self.probe_only:
                checks += self.check()
        except Exception:
            for log in (self.gunicorn.log, self.worker.log):
                if log.exists():
                    print(
                        f"--- {log.name} (last lines)\n"
                        + "".join(log.read_text().splitlines(True)[-30:])
                    )
            raise
        finally:
            self.worker.stop()
            self.gunicorn.stop()
            self.redis.kill()
        self.report(checks)
        for log in (self.gunicorn.log, self.worker.log):
            shutil.copy(log, self.out / log.name)
        return 0 if all(c.passed for c in checks) else 1

    def set_up(self) -> None:
        self.redis.start()
        fresh_database(self.database_url)
        os.environ.update(
            LOADTEST_DATABASE_URL=self.database_url,
            LOADTEST_REDIS_URL=self.redis.url,
            REDIS_URL=self.redis.url,  # the sample's start-up PING: ours, never 6379
            LOADTEST_CLAIM_TIMEOUT=str(CLAIM_TIMEOUT),
            DJANGO_SETTINGS_MODULE="loadtest.settings",
            SAMPLE_REDIS_WARNED="1",
        )
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        from sample_project.blog.seed import seed

        seed()
        self.cold = cold_posts()
        self.say(f"database {self.database_url.rsplit('/', 1)[-1]} migrated and seeded")
        self.worker.start()
        self.gunicorn.start()
        wait_until(self._serving, 60, "gunicorn serving the sample")
        self.say(f"gunicorn ({self.form.workers} workers) on port {self.gunicorn.port}, "
                 f"redis on port {self.redis.port}")  # fmt: skip

    def _serving(self) -> bool:
        from .browser import Browser

        try:
            return Browser(self.gunicorn.port, timeout=5).request("GET", "/").status == 200
        except OSError:
            return False

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.say(name)
        self.recorder.phase = name
        start = self.recorder.now()
        try:
            yield
        finally:
            self.recorder.windows.append((name, start, self.recorder.now()))

    def make_site(self) -> Site:
        from django.contrib.auth import get_user_model
        from sample_project.blog.models import Post

        hot = dict(Post.objects.exclude(pk__in=self.cold).values_list("pk", "slug"))
        authors = list(get_user_model()._default_manager.filter(posts__isnull=False)
                       .values_list("username", flat=True).distinct())  # fmt: skip
        return Site(
            self.gunicorn.port, self.recorder, hot, list(self.cold.values()), authors,
            uuid.uuid4().hex[:6],
        )  # fmt: skip

    def load_with_faults(self) -> None:
        from . import probe
        from .load import Editor, actors

        form = self.form
        threads = actors(self.site, form.readers, ["alice", "bob", "carol"], "admin")
        self.recorder.start = time.monotonic()  # the chart's zero: the load starts
        self.cold_editor = Editor(self.site, "cold-editor", "admin")
        self.cold_editor.log_in()
        cold = iter(self.cold.items())
        for thread in threads:
            thread.start()
        pause = self.site.stop.wait
        try:
            with self.phase("baseline"):
                pause(form.baseline)
            with self.phase("redis killed, restarted empty"):
                self.redis.kill()
                self.edit_cold(cold, form.outage)
                self.redis.start()
            with self.phase("after the empty restart"):
                pause(form.settle)
            with self.phase("redis restarted from a snapshot"):
                # Pages cached and invalidated after the SAVE come back from the dump.
                self.redis.snapshot()
                self.edit_cold(cold, form.outage)
                self.redis.kill()
                self.redis.start(from_snapshot=True)
                self.say(f"redis restarted with {self.redis.client().dbsize()} keys from the dump")
            with self.phase("after the snapshot restart"):
                pause(form.settle)
            with self.phase("redis hung (CLIENT PAUSE)"):
                self.redis.pause(form.pause)
                self.edit_cold(cold, form.pause)
            with self.phase("after the pause"):
                pause(form.settle)
            with self.phase("mail worker killed while sending"):
                self.kill_worker_mid_send()
            with self.phase("after the worker kill"):
                pause(form.settle)
            with self.phase("workers reloaded during an outage"):
                self.redis.kill()
                self.gunicorn.reload()
                self.edit_cold(cold, form.outage)
                # A Redis with persistence comes back from its last dump, as above; an
                # empty start here would also wipe whatever the snapshot left stale.
                self.redis.start(from_snapshot=True)
            with self.phase("cooldown"):
                # The probe's readers and commenters each want a worker of their own:
                # started now, they are up when it begins.
                self.gunicorn.scale(probe.WORKERS)
                pause(form.settle)
        finally:
            self.site.stop.set()
            for thread in threads:
                thread.join(60)

    def probe(self) -> Check:
        """Comments racing the reads of a hot post, then every cached page checked (probe.py)."""
        from . import probe

        with self.phase("stale-read probe"):
            result = probe.run(self.site)
        self.say(f"{'PASS' if result.passed else 'FAIL'}  {result.name}: {result.summary}")
        for line in result.details:
            self.say(f"      {line}")
        return result

    def edit_cold(self, cold: Iterator[tuple[int, str]], seconds: float) -> None:
        """Wait half of ``seconds``, edit the next cold post in the admin, wait the rest."""
        from .load import _Failed

        start = time.monotonic()
        self.site.stop.wait(seconds / 2)
        pk, slug = next(cold)
        try:
            self.cold_editor.edit(pk, slug, 0)
            self.say(f"edited {slug} in the admin")
        except _Failed:
            self.say(f"editing {slug} in the admin failed (recorded)")
        self.site.stop.wait(max(0.0, seconds - (time.monotonic() - start)))

    def kill_worker_mid_send(self) -> None:
        from signalhooks.models import WelcomeMail

        sending = WelcomeMail.objects.filter(status=WelcomeMail.Status.SENDING)
        wait_until(sending.exists, 30, "a welcome mail being sent")
        self.worker.kill()
        self.killed_at = time.monotonic()
        # Evidence that the kill did interrupt a send: a row left claimed by the dead worker.
        self.interrupted = list(sending.values_list("user_pk", flat=True))
        self.say(f"worker killed while sending the mail of user(s) {self.interrupted}")
        time.sleep(1)
        self.worker.start()

    def check(self) -> list[Check]:
        """Let the system recover the way it is documented to, then check the database."""
        from django.core.management import call_command
        from django_tasks_db.models import DBTaskResult

        from . import checks

        with self.phase("drain"):
            wait_until(lambda: not DBTaskResult.objects.ready().exists(), 120, "mail queue drained")
            # A send the killed worker had claimed is resent once its claim times out.
            time.sleep(max(0.0, self.killed_at + CLAIM_TIMEOUT + 1 - time.monotonic()))
            call_command("signalhooks", "welcome", "--retry", verbosity=0)
        self.gunicorn.stop()
        self.worker.stop()
        results = checks.run_all()
        for c in results:
            self.say(f"{'PASS' if c.passed else 'FAIL'}  {c.name}: {c.summary}")
        return results

    def report(self, results: list[object]) -> None:
        from . import probe, report

        samples = self.recorder.samples
        span = max((s.at for s in samples), default=0) - min((s.at for s in samples), default=0)
        ok = sum(s.outcome == "ok" for s in samples)
        meta = {
            "form": self.form.name,
            "summary": (
                f"{len(samples)} requests in {span:.0f} s ({len(samples) / max(span, 1):.1f}/s), "
                f"{ok} succeeded; {len(self.site.registered)} registrations through the form."
            ),
            "gunicorn workers": f"{self.form.workers}, {probe.WORKERS} for the stale-read probe",
            "actors": f"{self.form.readers} readers, 3 commenters, 1 admin editor, 1 registrar",
            "database": "PostgreSQL (" + self.database_url.rsplit("/", 1)[-1] + ")",
            "python": sys.version.split()[0],
            "django": __import__("django").get_version(),
            "mail delay in the worker": f"{MAIL_DELAY} s",
            "claim timeout": f"{CLAIM_TIMEOUT} s",
        }
        report.write(self.out, self.recorder, results, meta)  # type: ignore[arg-type]
        self.say(f"report: {self.out / 'REPORT.md'}")


if __name__ == "__main__":
    sys.exit(main())
