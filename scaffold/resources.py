"""Where the emitted sources live, installed or in a source checkout.

Copier reads ``copier.yml`` and ``templates/`` from the repository root; a wheel carries the same
files under ``scaffold/_data``. Every caller asks here so both layouts work.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def template_root() -> Path:
    """The folder holding ``copier.yml`` and ``templates/`` (a Copier template root)."""
    bundled = _PACKAGE_DIR / "_data"
    if (bundled / "copier.yml").is_file():
        return bundled
    return _PACKAGE_DIR.parent


def templates_dir() -> Path:
    """The ``templates/`` folder: every Jinja source the tool emits."""
    return template_root() / "templates"
