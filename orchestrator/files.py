"""Writing files so that a reader never sees half of one.

Every file the pipeline writes for others to read (sentinels, the effective
config, the calendar cache, scheduler units) goes through
``write_atomically``: the content lands in a temp file in the same folder,
which then replaces the target in one ``os.replace``. A process killed
half-way leaves the old file (or none), never a torn one, and no temp file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, content: str | bytes, mode: int | None = None) -> None:
    """Replace ``path`` with ``content`` in one step; ``mode`` sets its permission bits."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content.encode() if isinstance(content, str) else content)
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
