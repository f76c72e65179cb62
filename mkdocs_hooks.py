"""MkDocs hook: publish the repository files that the pages link to outside docs/.

The pages link to ``../benchmarks/results/REPORT.md`` and the like, which is right where
they are read on a forge. MkDocs only knows files under docs/, so each such target is added
as a file of the site (under ``repository/``) and the links resolve to it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files, InclusionLevel

LINK = re.compile(r"\]\((\.\./[^)#\s]+)")


class RepositoryFile(File):
    """A file of the repository, copied as it is (a Markdown report too: not a page)."""

    def is_documentation_page(self) -> bool:
        return False


def on_files(files: Files, config: Any) -> Files:
    docs = Path(config["docs_dir"])
    for page in list(files.documentation_pages()):
        text = Path(page.abs_src_path).read_text(encoding="utf-8")
        for target in LINK.findall(text):
            src_uri = posixpath.normpath(posixpath.join(posixpath.dirname(page.src_uri), target))
            if files.get_file_from_path(src_uri) is None and (docs / src_uri).is_file():
                outside = posixpath.normpath(src_uri).lstrip("./")
                extra = RepositoryFile(
                    src_uri,
                    str(docs),
                    config["site_dir"],
                    config["use_directory_urls"],
                    inclusion=InclusionLevel.INCLUDED,
                )
                extra.dest_uri = f"repository/{outside}"
                extra.url = extra.dest_uri
                files.append(extra)
    return files
