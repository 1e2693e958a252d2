"""Atomic writes: a temporary file in the same folder, then ``os.replace``, mode bits kept."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


class NotWritable(OSError):
    """The file is read-only; scaffold does not override that."""


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never half of one."""
    info = path.stat()
    # the write bits count even for root: a read-only file was made so on purpose
    if not info.st_mode & 0o222 or not os.access(path, os.W_OK):
        raise NotWritable(f"{path} is read-only")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, stat.S_IMODE(info.st_mode))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
