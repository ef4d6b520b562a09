"""Secrets generated on first use and kept in a file (the audit signing key, the session key)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def read_or_create(path: str | Path, make: Callable[[], str]) -> str:
    """The text kept in ``path``; made with ``make`` and written there (mode 0600) when there is
    no such file. Several processes starting at once all get the text of the first one to write
    it: the file is written beside and linked into place, which fails if it exists, so nobody
    ever reads a half-written file. ``OSError`` when it can be neither read nor written."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(make() + "\n")
            try:
                os.link(staged, path)
            except FileExistsError:  # another process made it first: use theirs
                pass
        finally:
            os.unlink(staged)
    return path.read_text(encoding="utf-8").strip()
