"""Whether the shortcuts are off: ``SCAFFOLD_PLAIN_LIBCST=1``, or ``plain_libcst()``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

_plain = os.environ.get("SCAFFOLD_PLAIN_LIBCST", "") not in ("", "0")


def is_plain() -> bool:
    """True: every piece of this package does what LibCST itself does, the slow way."""
    return _plain


@contextmanager
def plain_libcst(plain: bool = True) -> Iterator[None]:
    """Run LibCST without the shortcuts (or with them) for the length of the block, in this
    process (the differential test; worker processes read the environment variable)."""
    global _plain
    before, _plain = _plain, plain
    try:
        yield
    finally:
        _plain = before
