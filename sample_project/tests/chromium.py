"""Find the Chromium the browser test drives: ``CHROMIUM=``, else the first one on PATH.

``python -m sample_project.tests.chromium`` exits 0 when there is one (the Makefile
asks before it offers to install Debian's package); with ``--explain`` it also says
what the browser test will do without one.
"""

from __future__ import annotations

import os
import shutil
import sys

#: The names Chromium goes by on Debian/Ubuntu, Fedora, Arch, macOS (Homebrew) and Chrome.
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

HOW_TO_GET = (
    "the browser test needs Chromium and none was found on PATH. Install it "
    "(Debian/Ubuntu: `apt-get install chromium`, Fedora: `dnf install chromium`, "
    "macOS: `brew install --cask chromium`) or point CHROMIUM=/path/to/chromium at one; "
    "`make test` run as root on Debian installs the package itself."
)


def find_chromium() -> str | None:
    """Return the Chromium to run: ``$CHROMIUM`` if set, else the first of NAMES on PATH.

    A ``CHROMIUM`` that names nothing runnable raises: the user asked for that one.
    """
    wanted = os.environ.get("CHROMIUM", "")
    if wanted:
        found = shutil.which(wanted)
        if found is None:
            raise FileNotFoundError(
                f"CHROMIUM={wanted!r} is not an executable (nor a command on PATH); "
                "unset it to use the Chromium on PATH, or give the full path of one."
            )
        return found
    return next(filter(None, map(shutil.which, NAMES)), None)


def main(explain: bool) -> int:
    try:
        found = find_chromium()
    except FileNotFoundError as error:
        if explain:
            print(f"note: the browser test will fail: {error}")
        return 1
    if found is None and explain:
        print(f"note: skipping the browser test: {HOW_TO_GET}")
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main(explain="--explain" in sys.argv))
