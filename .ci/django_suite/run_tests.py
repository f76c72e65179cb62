"""Run Django's ``tests/runtests.py`` with signalhooks installed (cwd: Django's tests/).

``runtests.py`` sets INSTALLED_APPS itself: import it as a module, add signalhooks and
the ``everywhere`` app to its ALWAYS_INSTALLED_APPS, then run its ``__main__`` block in
its own namespace. Arguments are runtests.py's.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import sys

sys.path[:0] = [os.getcwd(), os.path.dirname(os.path.abspath(__file__))]
# Workers forked from this process keep the added apps (spawned ones would re-import
# runtests without them).
multiprocessing.set_start_method("fork")

import runtests  # noqa: E402

runtests.ALWAYS_INSTALLED_APPS += ["signalhooks", "signalhooks_everywhere.apps.EverywhereConfig"]
sys.argv[0] = runtests.__file__
with open(runtests.__file__) as source:
    tree = ast.parse(source.read())
(main,) = [
    node
    for node in tree.body
    if isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'"
]
exec(
    compile(ast.Module(body=main.body, type_ignores=[]), runtests.__file__, "exec"), vars(runtests)
)
