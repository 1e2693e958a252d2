"""Import roots: the folders on ``sys.path`` a repo's files are imported from.

Placeholder (the packaging-metadata version replaces it): a file's import root is the parent
of its topmost enclosing folder that has an ``__init__.py`` (the file's own folder when it has
none), so a ``src/`` layout counts ``src`` as the root. ``project`` is the nearest folder at or
above the root holding a ``pyproject.toml`` or ``setup.py``, inside the repo.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ImportRoot:
    path: Path  # the folder on sys.path (repo root, src/, a project folder)
    project: Path | None  # the folder of the nearest pyproject.toml/setup.py (the distribution)


def _root_of(file: Path) -> Path:
    folder = file.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder


def _project_of(folder: Path, repo_root: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        if (candidate / "pyproject.toml").is_file() or (candidate / "setup.py").is_file():
            return candidate
        if candidate == repo_root:
            break
    return None


def import_roots(repo_root: Path, files: Sequence[Path]) -> tuple[ImportRoot, ...]:
    """Every import root the ``files`` are imported from, deepest first."""
    repo_root = repo_root.absolute()
    roots = {_root_of(file.absolute()) for file in files}
    return tuple(ImportRoot(root, _project_of(root, repo_root))
                 for root in sorted(roots, key=lambda p: (-len(p.parts), str(p))))


def module_name(path: Path, roots: Sequence[ImportRoot]) -> str | None:
    """The dotted module ``path`` is under the deepest root containing it; None outside all."""
    text = str(path.absolute())
    best = ""
    for root in roots:
        prefix = str(root.path).rstrip(os.sep) + os.sep
        if text.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    if not best or not text.endswith(".py"):
        return None
    parts = text[len(best):-3].split(os.sep)
    if parts and parts[-1] == "__init__":
        parts.pop()
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)
