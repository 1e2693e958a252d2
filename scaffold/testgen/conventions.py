"""The target repository's pytest conventions, read from its configuration.

Generated tests follow them: ``asyncio_mode = "auto"`` gives plain ``async def`` tests, strict
pytest-asyncio gives ``@pytest.mark.asyncio``, no pytest-asyncio gives ``asyncio.run``; a
declared ``tracing`` marker is put on every generated module.
"""

from __future__ import annotations

import configparser
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

MARKER = "tracing"


@dataclass(frozen=True)
class PytestStyle:
    asyncio: str = "run"  # "auto", "marker" or "run"
    marker: str | None = None

    @property
    def needs_asyncio_import(self) -> bool:
        return self.asyncio == "run"


def _ini_options(root: Path) -> tuple[dict[str, object], str]:
    """pytest's options from the first file that configures it, and that file's raw text."""
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        text = pyproject.read_text(encoding="utf-8")
        try:
            tool = tomllib.loads(text).get("tool", {})
        except tomllib.TOMLDecodeError:
            tool = {}
        pytest_table = tool.get("pytest", {})
        options = pytest_table.get("ini_options", pytest_table)
        if isinstance(options, dict) and options:
            return options, text
    for name, section in (("pytest.ini", "pytest"), ("tox.ini", "pytest"),
                          ("setup.cfg", "tool:pytest")):
        path = root / name
        if not path.is_file():
            continue
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error:
            continue
        if parser.has_section(section):
            options = {key: value for key, value in parser.items(section)}
            if "markers" in options:
                options["markers"] = [m for m in str(options["markers"]).splitlines() if m.strip()]
            return options, path.read_text(encoding="utf-8")
    return {}, pyproject.read_text(encoding="utf-8") if pyproject.is_file() else ""


def read_style(root: Path) -> PytestStyle:
    options, text = _ini_options(root)
    mode = str(options.get("asyncio_mode", "")).strip().lower()
    if mode == "auto":
        asyncio = "auto"
    elif mode == "strict" or re.search(r"pytest[-_]asyncio", text):
        asyncio = "marker"
    else:
        asyncio = "run"
    markers = options.get("markers", [])
    if isinstance(markers, str):
        markers = markers.splitlines()
    if not isinstance(markers, list):
        markers = []
    declared = {str(m).split(":")[0].split("(")[0].strip() for m in markers}
    return PytestStyle(asyncio=asyncio, marker=MARKER if MARKER in declared else None)
