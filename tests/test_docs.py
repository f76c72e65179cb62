"""Every Python block of README.md and docs/*.md runs here, so no example drifts from the code.

Each page is one test: its ```python blocks run in order in one namespace, as if they
were one module of the ``blog`` app (tests/docs_site/blog: ``from .models import Post``
works), against the real database and Redis of the suite, outside a transaction (the
examples describe autocommit unless they open ``atomic()`` themselves). A block that
starts with ``>>>`` is a doctest: its printed results are compared too.

A block that defines test functions (``def test_...``) or ``TestCase`` classes has them
run right after it, as pytest would: a ``db`` argument runs the test in a transaction
that is rolled back (pytest-django's ``db``), ``signalhooks_record`` gets a record, and a
test that asks for no database is refused one. Any other argument is an error here:
keep the examples' fixtures to these.

Two markers, an HTML comment on the line before a block (keep them few, with a reason):

* ``<!-- example: not run (why) -->`` — the block cannot run alone (a settings file
  fragment, a page template);
* ``<!-- example: skip (why, naming the bug) -->`` — it should run and fails today
  because of a known bug: reported as a skipped test of its own, never silently.

New pages under docs/ are picked up by the glob; docs/_pending/ (notes waiting to be
merged into the pages) is left out.
"""

from __future__ import annotations

import doctest
import inspect
import re
import sys
import types
import unittest
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django.core.signals
import django.db.models.signals
import pytest
from django.db import transaction
from django.dispatch import Signal

import signalhooks
from signalhooks.testing import record_signalhooks

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")
MARKER = re.compile(r"^\s*<!--\s*example:\s*(?P<kind>not run|skip)\s*\((?P<why>.+)\)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the first line of code
    source: str
    marker: str | None  # "not run", "skip" or None
    why: str

    @property
    def where(self) -> str:
        name = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page.name
        return f"{name}:{self.line}"


def pages() -> list[Path]:
    found = [ROOT / "README.md"]
    found += sorted(p for p in DOCS.rglob("*.md") if "_pending" not in p.relative_to(DOCS).parts)
    return found


def python_blocks(page: Path) -> list[Block]:
    """The ```python blocks of a Markdown page, dedented, with the marker before each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        end = i + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence) and lines[end].strip(fence[0]).strip() == ""
        ):
            end += 1
        if opening["info"].strip().split(" ")[0] == "python":
            body = [
                line[len(indent) :] if line.startswith(indent) else line
                for line in lines[i + 1 : end]
            ]
            previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            mark = MARKER.match(previous)
            blocks.append(
                Block(
                    page=page,
                    line=i + 2,
                    source="\n".join(body) + "\n",
                    marker=mark["kind"] if mark else None,
                    why=mark["why"] if mark else "",
                )
            )
        i = end + 1
    return blocks


def _items() -> Iterator[Any]:
    for page in pages():
        name = str(page.relative_to(ROOT))
        yield pytest.param(page, id=name)
        for block in python_blocks(page):
            if block.marker == "skip":
                yield pytest.param(
                    block,
                    id=block.where,
                    marks=pytest.mark.skip(reason=f"{block.where}: {block.why}"),
                )


class ExampleFailed(AssertionError):
    pass


@contextmanager
def _pytest_like_arguments(func: Any, blocker: Any) -> Iterator[dict[str, Any]]:
    """The arguments pytest would pass the examples' test functions, set up in their order."""
    names = list(inspect.signature(func).parameters)
    with ExitStack() as stack:
        if not {"db", "transactional_db"} & set(names):
            stack.enter_context(blocker.block())  # as pytest-django: no database unless asked
        arguments: dict[str, Any] = {}
        for name in names:
            if name == "db":
                stack.enter_context(_rolled_back())
                arguments[name] = None
            elif name == "transactional_db":
                arguments[name] = None
            elif name == "signalhooks_record":
                arguments[name] = stack.enter_context(record_signalhooks())
            else:
                raise ExampleFailed(
                    f"{func.__qualname__} asks for the fixture {name!r}: the examples may use "
                    "db, transactional_db and signalhooks_record (tests/test_docs.py)"
                )
        yield arguments


class _Rollback(Exception):
    pass


@contextmanager
def _rolled_back() -> Iterator[None]:
    try:
        with transaction.atomic():
            yield
            raise _Rollback
    except _Rollback:
        pass


def _run_tests_defined(
    block: Block, namespace: dict[str, Any], before: set[str], blocker: Any
) -> None:
    for name, value in list(namespace.items()):
        if name in before or getattr(value, "__module__", None) != namespace["__name__"]:
            continue
        if inspect.isfunction(value) and name.startswith("test_"):
            with _pytest_like_arguments(value, blocker) as arguments:
                value(**arguments)
        elif inspect.isclass(value) and issubclass(value, unittest.TestCase):
            result = unittest.TestResult()
            unittest.defaultTestLoader.loadTestsFromTestCase(value).run(result)
            problems = result.errors + result.failures
            if problems or not result.testsRun:
                details = "\n".join(text for _, text in problems) or "no test ran"
                raise ExampleFailed(f"{block.where}: {name} failed:\n{details}")


def run_block(block: Block, namespace: dict[str, Any], blocker: Any) -> None:
    before = set(namespace)
    if block.source.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(
            block.source, namespace, block.where, str(block.page), block.line - 1
        )
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        output: list[str] = []
        runner.run(test, out=output.append, clear_globs=False)
        namespace.update(test.globs)  # the DocTest ran on a copy
        if runner.failures:
            raise ExampleFailed("".join(output))
    else:
        # Padded so that a traceback names the page's own line numbers.
        code = compile("\n" * (block.line - 1) + block.source, str(block.page), "exec")
        exec(code, namespace)
    _run_tests_defined(block, namespace, before, blocker)


@pytest.mark.parametrize("subject", list(_items()))
def test_examples(
    subject: Any, transactional_db: None, django_db_blocker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    page: Path = subject
    # The page's blocks run as the module blog.hooks, which has none of its own: so the
    # examples' `from .models import Post` and `from blog.hooks import notify_author` work.
    module = types.ModuleType("blog.hooks")
    module.__package__ = "blog"
    monkeypatch.setitem(sys.modules, "blog.hooks", module)
    namespace = vars(module)
    try:
        for block in python_blocks(page):
            if block.marker is None:
                run_block(block, namespace, django_db_blocker)
    finally:
        disconnect_receivers(namespace)


def disconnect_receivers(namespace: dict[str, Any]) -> None:
    """Disconnect what the page's ``@receiver`` examples connected: other tests must not see it.

    (The registry is isolated per test by tests/conftest.py; plain Django signals are not.)
    """
    signals = [
        value
        for module in (signalhooks, django.db.models.signals, django.core.signals)
        for value in vars(module).values()
        if isinstance(value, Signal)
    ]
    for value in namespace.values():
        if inspect.isfunction(value) and value.__module__ == namespace["__name__"]:
            for signal in signals:
                signal.disconnect(value)


def test_markers_are_spelled_right() -> None:
    """A marker that does not parse would let its block run, or hide a typo: refuse both."""
    for page in pages():
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if "<!-- example" in line:
                assert MARKER.match(line), f"{page.relative_to(ROOT)}:{number}: bad marker {line!r}"


def test_blocks_are_found_indented_and_marked(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n```python\na = 1\n```\n\n* item\n\n  ```python\n  b = a + 1\n  ```\n\n"
        "<!-- example: not run (a fragment) -->\n```python\nc = undefined\n```\n"
        "```console\n$ ls\n```\n",
        encoding="utf-8",
    )
    blocks = python_blocks(page)
    assert [(b.line, b.source, b.marker, b.why) for b in blocks] == [
        (4, "a = 1\n", None, ""),
        (10, "b = a + 1\n", None, ""),
        (15, "c = undefined\n", "not run", "a fragment"),
    ]


def test_a_drifted_example_fails(
    tmp_path: Path, transactional_db: None, django_db_blocker: Any
) -> None:
    """The runner reports a wrong doctest result, a failing test function, a test that
    uses the database without asking for ``db``, and a failing ``TestCase``."""
    page = tmp_path / "page.md"
    page.write_text(
        "```python\n>>> 1 + 1\n3\n```\n\n"
        "```python\ndef test_it():\n    assert False\n```\n\n"
        "```python\nfrom blog.models import Post\n\n"
        "def test_no_db():\n    Post.objects.count()\n```\n\n"
        "```python\nfrom django.test import TestCase\n\n"
        "class PostTests(TestCase):\n"
        "    def test_none(self):\n        self.assertEqual(1, 2)\n```\n",
        encoding="utf-8",
    )
    wrong_result, failing_test, test_without_db, failing_testcase = python_blocks(page)
    namespace: dict[str, Any] = {"__name__": "blog.examples", "__package__": "blog"}
    with pytest.raises(ExampleFailed, match="Expected:\\s+3\\s+Got:\\s+2"):
        run_block(wrong_result, namespace, django_db_blocker)
    with pytest.raises(AssertionError):
        run_block(failing_test, namespace, django_db_blocker)
    with pytest.raises(RuntimeError, match="Database access not allowed"):
        run_block(test_without_db, namespace, django_db_blocker)
    with pytest.raises(ExampleFailed, match="(?s)PostTests failed:.*1 != 2"):
        run_block(failing_testcase, namespace, django_db_blocker)


def test_the_settings_page_lists_every_key_with_its_default() -> None:
    from signalhooks.conf import DEFAULTS

    namespace: dict[str, Any] = {}
    (block,) = [b for b in python_blocks(DOCS / "settings.md") if "SIGNALHOOKS = {" in b.source]
    exec(block.source, namespace)
    assert namespace["SIGNALHOOKS"] == DEFAULTS


def test_the_running_example_shows_the_models_the_examples_use() -> None:
    (block,) = [
        b for b in python_blocks(DOCS / "index.md") if b.source.startswith("# blog/models.py")
    ]
    models = (ROOT / "tests/docs_site/blog/models.py").read_text(encoding="utf-8")
    assert (
        "# blog/models.py\n" + models.split("from __future__ import annotations\n\n", 1)[1]
        == block.source
    )


def test_the_readme_stays_a_quick_start() -> None:
    """The reference lives in docs/; the README keeps what a newcomer needs (issue 24)."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 400, f"README.md has {lines} lines: move reference material to docs/"
