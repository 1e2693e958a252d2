"""Atomic writes: a temporary file in the same folder, then ``os.replace``, mode bits kept."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


class NotWritable(OSError):
    """The file is read-only; scaffold does not override that."""


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never half of one.

    An existing file keeps its mode bits, and a read-only one is refused (``NotWritable``). A
    missing file is created with ``mode`` when one is given, else ``FileNotFoundError``: the
    engine only ever rewrites files that are there.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        if mode is None:
            raise
        keep = mode
    else:
        # the write bits count even for root: a read-only file was made so on purpose
        if not info.st_mode & 0o222 or not os.access(path, os.W_OK):
            raise NotWritable(f"{path} is read-only")
        keep = stat.S_IMODE(info.st_mode)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, keep)  # mkstemp creates 0600
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
