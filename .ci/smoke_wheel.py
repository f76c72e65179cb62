"""Smoke-test the installed wheel of django-signalhooks (run by .ci/run in a clean venv).

Usage: ``python .ci/smoke_wheel.py path/to/django_signalhooks-X.tar.gz`` from a directory
outside the repository, with only the wheel (and its dependencies) installed: what is
checked is what a user gets from ``pip install django-signalhooks``.
"""

from __future__ import annotations

import sys
import tarfile
from importlib import metadata
from pathlib import Path

SHIPPED = (
    "py.typed",
    "templates/signalhooks/welcome.html",
    "templates/signalhooks/welcome.txt",
    "templates/signalhooks/welcome_subject.txt",
    "migrations/0001_initial.py",
    "migrations/0004_welcome_mail_claims.py",
    "contrib/debug_toolbar/panel.py",
    "contrib/debug_toolbar/templates/signalhooks/debug_toolbar/panel.html",
    "testing.py",
)


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"smoke test failed: {message}")


def check_metadata() -> None:
    dist = metadata.distribution("django-signalhooks")
    check(dist.metadata["Name"] == "django-signalhooks", f"name is {dist.metadata['Name']!r}")
    classifiers = dist.metadata.get_all("Classifier") or []
    for wanted in ("Framework :: Django :: 6.1", "Programming Language :: Python :: 3.13"):
        check(wanted in classifiers, f"classifier {wanted!r} missing")
    files = {str(f) for f in dist.files or ()}
    for name in SHIPPED:
        check(f"signalhooks/{name}" in files, f"the wheel lacks signalhooks/{name}")
    check(not any(f.startswith(("tests/", "sample_project/")) for f in files), "tests shipped")
    plugins = metadata.entry_points(group="pytest11", name="signalhooks")
    check([p.value for p in plugins] == ["signalhooks.testing"], "pytest11 entry point missing")


def check_sdist(path: Path) -> None:
    with tarfile.open(path) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for name in SHIPPED:
        check(f"src/signalhooks/{name}" in names, f"the sdist lacks src/signalhooks/{name}")
    for name in ("LICENSE", "README.md", "pyproject.toml"):
        check(name in names, f"the sdist lacks {name}")


def check_django() -> None:
    import django
    from django.conf import settings

    mail = (
        {"MAILERS": {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}}
        if django.VERSION >= (6, 1)
        else {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    )
    settings.configure(
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "signalhooks"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        TEMPLATES=[
            {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}
        ],
        USE_TZ=True,
        SECRET_KEY="smoke-test-only",  # signs the Message-ID and the activation links
        DEFAULT_FROM_EMAIL="smoke@example.com",
        SIGNALHOOKS={"SITE_NAME": "Smoke"},
        **mail,
    )
    django.setup()

    import signalhooks

    check("site-packages" in signalhooks.__file__, f"imported {signalhooks.__file__}")
    from django.contrib.auth.models import User
    from django.core import mail as outbox
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)  # the migrations shipped
    check("signalhooks_welcomemail" in connection.introspection.table_names(), "no migration")
    call_command("check", fail_level="WARNING")
    User.objects.create_user("ada", "ada@example.com", "pw")  # the templates shipped
    sent = getattr(outbox, "outbox", [])
    check(len(sent) == 1 and "Smoke" in sent[0].subject, f"welcome mail: {sent!r}")
    check(bool(sent[0].alternatives), "the welcome mail has no HTML part")
    from signalhooks.testing import record_signalhooks

    with record_signalhooks() as record:
        User.objects.create_user("bob", "bob@example.com", "pw")
    record.assert_mail_queued(to="bob@example.com")


def main() -> None:
    check(not Path("src/signalhooks").exists(), "run me outside the repository")
    check_metadata()
    check_sdist(Path(sys.argv[1]))
    check_django()
    print("smoke test of the wheel passed:", metadata.version("django-signalhooks"))


if __name__ == "__main__":
    main()
