"""Finding Chromium for the browser test, and what happens without one."""

from __future__ import annotations

import os
import stat

import pytest

from sample_project.tests.chromium import HOW_TO_GET, find_chromium
from sample_project.tests.test_browser import chromium_or_skip


def executable(directory, name):
    path = directory / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def bare_path(tmp_path, monkeypatch):
    """A PATH holding nothing but what a test puts there; no CHROMIUM, no CI."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.delenv("CI", raising=False)
    return directory


def test_chromium_found_on_path_under_any_usual_name(bare_path):
    assert find_chromium() is None
    found = executable(bare_path, "chromium-browser")
    assert find_chromium() == str(found)
    first = executable(bare_path, "chromium")
    assert find_chromium() == str(first)


def test_chromium_override(bare_path, tmp_path, monkeypatch):
    elsewhere = executable(tmp_path, "my-chromium")
    executable(bare_path, "chromium")
    monkeypatch.setenv("CHROMIUM", str(elsewhere))
    assert find_chromium() == str(elsewhere)


def test_chromium_override_naming_nothing_says_so(bare_path, monkeypatch):
    monkeypatch.setenv("CHROMIUM", "/nowhere/chromium")
    with pytest.raises(FileNotFoundError, match=r"CHROMIUM='/nowhere/chromium' is not an exec"):
        find_chromium()


def test_browser_test_skips_without_chromium_and_says_how(bare_path):
    with pytest.raises(pytest.skip.Exception) as skipped:
        chromium_or_skip()
    assert str(skipped.value) == HOW_TO_GET
    assert "apt-get install chromium" in HOW_TO_GET and "CHROMIUM=" in HOW_TO_GET


def test_browser_test_fails_under_ci_without_chromium(bare_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: the browser test needs Chromium"):
        chromium_or_skip()


def test_browser_test_uses_the_chromium_found(bare_path):
    found = executable(bare_path, "chromium")
    assert chromium_or_skip() == str(found)
    assert os.access(found, os.X_OK)


def test_make_asks_and_explains(bare_path, monkeypatch, capsys):
    from sample_project.tests.chromium import main

    assert main(explain=True) == 1
    assert capsys.readouterr().out == f"note: skipping the browser test: {HOW_TO_GET}\n"
    monkeypatch.setenv("CHROMIUM", "/nowhere/chromium")
    assert main(explain=True) == 1
    assert (
        "note: the browser test will fail: CHROMIUM='/nowhere/chromium'" in capsys.readouterr().out
    )
    monkeypatch.delenv("CHROMIUM")
    executable(bare_path, "chromium")
    assert main(explain=False) == 0 and capsys.readouterr().out == ""
