"""``[tool.scaffold]`` in the target's ``pyproject.toml``: its shape, defaults and validation.

The table (every key optional)::

    [tool.scaffold]
    include = ["src/**/*.py"]      # gitignore-style globs relative to this file; default: all *.py
    exclude = ["src/legacy/**"]    # gitignore-style globs removed from what include found
    select = ["token-finally"]     # rule ids to run (codemods and checks); default: all
    ignore = ["thread-context"]    # rule ids never to run
    unsafe-fixes = false           # also apply codemods whose fix safety is "unsafe"
    kit = "shared.tracekit"        # one kit for every file (vendored there if missing); default:
                                   # per import root, existing or vendored (scaffold.vendor)
    helper-module = "huleedu_service_libs.observability"  # existing helper library codemods call
    service-name = "grading_service"  # service name the bootstrap codemod uses
    tests-dir = "tests/tracing"    # where retrofit writes the tests it generates (the default)
    generate-tests = true          # false: like --no-tests
    include-tests = false          # true: codemods rewrite test files too (see below)
    kafka-producers = ["huleedu_service_libs.kafka_client.KafkaBus.publish"]  # see below
    add-dependencies = true        # false: like --no-deps (report what to declare, edit nothing)

    [tool.scaffold.options.baggage-cardinality]   # per-rule options, validated by the rule
    allowed-keys = ["correlation_id"]

``kafka-producers`` tells kafka-produce about producers it cannot see being built with
``AIOKafkaProducer(...)``. Each entry is a dotted name (the module path is optional) of either
a factory, a class or function whose calls return an aiokafka producer
(``myservice.kafka.make_producer``), or a send wrapper ``Class.method`` taking ``(topic, ...,
headers=...)`` that sends one record (a shared library's bus ``KafkaBus.publish``): awaited
calls of it on instances of ``Class`` then run inside the kit's ``traced_publish``. List a
wrapper only when the repo does not hold its producer; a wrapper whose producer is built in the
repo is fixed inside, where it sends.

Test files are not rewritten unless ``include-tests = true`` (or ``--include-tests``): a
file under a ``tests`` or ``test`` folder, named ``test_*.py``, ``*_test.py`` or
``conftest.py``, or under ``tests-dir`` (``scaffold.engine.discovery.is_test_file`` decides).
Tests exercise the code with fakes and stubs, so trace context injected there proves nothing
and is noise in review; checks still read them. ``testing/`` and ``fixtures/`` folders are
not test files: libraries ship them and production code may import them (exclude them with
``exclude`` if they are only for tests). Even with ``include-tests``, a rewritten test file
only imports a kit that already exists: no kit is ever vendored for a test file's sake; and
``tests-dir``, where retrofit writes the tests it generates, is never rewritten (retrofit's
output is not its input).

A key this module does not know is an error naming the key and the file (exit 2), so a typo
never silently turns a setting off. Adding a key for a later feature is one line in ``_KEYS``.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scaffold.errors import UsageError


class ConfigError(UsageError):
    """The configuration is unreadable or invalid; the message names the key and the file."""


@dataclass(frozen=True)
class ImportSorting:
    """What the repo tells its import sorter (ruff's isort rules, or isort), as far as placing
    an added import needs it, and the line length its linter holds lines to."""

    first_party: tuple[str, ...] = ()  # known-first-party
    combine_as: bool = False  # combine-as-imports: ``a, b as c`` on one line
    placeable: bool = True  # False: an order this does not model; LibCST's placement stands
    # Set from the ruff configuration that governs the file (``ruff_settings_for``): ruff's
    # ``src`` folders (absolute), whose top-level folders and modules are first party, and the
    # top-level package the file is in (``detect-same-package``). Empty: not known.
    src: tuple[str, ...] = ()
    package: str | None = None
    line_length: int | None = None  # ruff's or black's line-length; None: nothing configured

    def is_first_party(self, top: str) -> bool:
        """ruff's answer for a top-level module name (``src`` known), as ``categorize`` has it:
        known-first-party, then the file's own package, then a match in a ``src`` folder."""
        return top in self.first_party or top == self.package or any(
            _in_source_folder(folder, top) for folder in self.src)


@functools.lru_cache(maxsize=4096)
def _in_source_folder(folder: str, top: str) -> bool:
    base = Path(folder) / top
    return base.is_dir() or base.with_name(f"{top}.py").is_file() or base.with_name(
        f"{top}.pyi").is_file()


@dataclass(frozen=True)
class Config:
    """One project's settings; ``root`` is where globs are anchored (the pyproject's folder)."""

    root: Path
    source: Path | None = None  # the pyproject.toml read, None for defaults
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    unsafe_fixes: bool = False
    kit: str | None = None
    helper_module: str | None = None
    service_name: str | None = None
    tests_dir: str = "tests/tracing"
    generate_tests: bool = True
    include_tests: bool = False
    kafka_producers: tuple[str, ...] = ()
    add_dependencies: bool = True  # retrofit adds what rewritten code imports to the manifest
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # what the repo's import sorter is told (ruff's or isort's settings in the same
    # pyproject.toml): added imports are placed the way it would place them
    import_sorting: ImportSorting = field(default_factory=ImportSorting)
    # the longest line the repo's linter/formatter allows (ruff's or black's line-length in
    # the same pyproject.toml; 88 when they are configured without one; None: not known)
    line_length: int | None = None

    @property
    def where(self) -> str:
        return str(self.source) if self.source else "defaults"


_LIST = "a list of strings"
_KEYS: dict[str, str] = {
    "include": _LIST,
    "exclude": _LIST,
    "select": _LIST,
    "ignore": _LIST,
    "unsafe-fixes": "a boolean",
    "kit": "a string",
    "helper-module": "a string",
    "service-name": "a string",
    "tests-dir": "a string",
    "generate-tests": "a boolean",
    "include-tests": "a boolean",
    "kafka-producers": _LIST,
    "add-dependencies": "a boolean",
    "options": "a table of tables keyed by rule id",
}


def _valid(kind: str, value: Any) -> bool:
    if kind == _LIST:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == "a boolean":
        return isinstance(value, bool)
    if kind == "a string":
        return isinstance(value, str) and bool(value)
    return isinstance(value, dict) and all(isinstance(item, dict) for item in value.values())


def load_config(pyproject: Path) -> Config | None:
    """The ``[tool.scaffold]`` table of ``pyproject`` as a Config, or None when it has none."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {pyproject}: {exc}") from exc
    table = data.get("tool", {}).get("scaffold")
    if table is None:
        return None
    return _scaffold_table(pyproject, data, table)


# isort settings whose default order place_in_sections models: any other value of these
# means an order it does not, and added imports keep LibCST's placement
_ORDER_DEFAULTS: dict[str, Any] = {
    "force-sort-within-sections": False, "force-single-line": False, "no-sections": False,
    "from-first": False, "order-by-type": True, "case-sensitive": False, "length-sort": False,
    "lines-between-types": 0, "force-to-top": [], "forced-separate": [], "section-order": None,
    "known-local-folder": [], "known-third-party": [], "extra-standard-library": [],
    "default-section": "third-party", "force-wrap-aliases": False,
}


def _import_sorting(data: Mapping[str, Any]) -> ImportSorting:
    """The isort settings of a pyproject.toml (``_isort_settings``), with black's line length
    when it configures black."""
    sorting = _isort_settings(data)
    tool = data.get("tool", {})
    black = tool.get("black") if isinstance(tool, dict) else None
    if isinstance(black, dict):
        length = black.get("line-length", black.get("line_length", 88))
        if isinstance(length, int):
            sorting = replace(sorting, line_length=length)
    return sorting


def _isort_settings(data: Mapping[str, Any]) -> ImportSorting:
    """The isort settings of a pyproject.toml: ruff's (``[tool.ruff.lint.isort]``, the older
    ``[tool.ruff.isort]``) or isort's own (``[tool.isort]``, underscores)."""
    tool = data.get("tool", {})
    ruff: dict[str, Any] = tool.get("ruff") if isinstance(tool.get("ruff"), dict) else {}
    lint: dict[str, Any] = ruff["lint"] if isinstance(ruff.get("lint"), dict) else {}
    for table in (lint.get("isort"), ruff.get("isort"), tool.get("isort")):
        if isinstance(table, dict):
            settings = {str(key).replace("_", "-"): value for key, value in table.items()}
            break
    else:
        return ImportSorting()
    first_party = settings.get("known-first-party", [])
    if not (isinstance(first_party, list) and all(isinstance(n, str) for n in first_party)):
        first_party = []
    placeable = all(settings.get(key, default) == default
                    for key, default in _ORDER_DEFAULTS.items()) and settings.get(
        "profile", "black") == "black"
    return ImportSorting(first_party=tuple(first_party),
                         combine_as=settings.get("combine-as-imports") is True,
                         placeable=placeable)


def _line_length(data: Mapping[str, Any]) -> int | None:
    """``line-length`` of ``[tool.ruff]``, else of ``[tool.black]`` (88, their default, when
    either table is there without one); None when neither is configured."""
    tool = data.get("tool", {})
    for name in ("ruff", "black"):
        table = tool.get(name) if isinstance(tool, dict) else None
        if isinstance(table, dict):
            value = table.get("line-length", table.get("line_length", 88))
            return value if isinstance(value, int) and value > 0 else 88
    return None


def _scaffold_table(pyproject: Path, data: Mapping[str, Any], table: Any) -> Config:
    if not isinstance(table, dict):
        raise ConfigError(f"[tool.scaffold] in {pyproject} must be a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        kind = _KEYS.get(key)
        if kind is None:
            known = ", ".join(sorted(_KEYS))
            raise ConfigError(
                f"unknown key {key!r} in [tool.scaffold] of {pyproject} (known: {known})"
            )
        if not _valid(kind, value):
            raise ConfigError(f"key {key!r} in [tool.scaffold] of {pyproject} must be {kind}")
        field_name = key.replace("-", "_")
        values[field_name] = tuple(value) if kind == _LIST else value
    return Config(root=pyproject.parent.resolve(), source=pyproject,
                  import_sorting=_import_sorting(data), line_length=_line_length(data),
                  **values)


def find_config(start: Path) -> Config:
    """The nearest ``pyproject.toml`` with a ``[tool.scaffold]`` table at or above ``start``.

    Without one, defaults anchored at ``start`` (a folder, or a file's folder).
    """
    start = start.resolve()
    folder = start if start.is_dir() else start.parent
    sorting: ImportSorting | None = None  # of the nearest pyproject.toml, if none has a table
    line_length: int | None = None
    for candidate in (folder, *folder.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file():
            config = load_config(pyproject)
            if config is not None:
                return config
            if sorting is None:
                data = tomllib.loads(pyproject.read_text("utf-8"))
                sorting, line_length = _import_sorting(data), _line_length(data)
    return Config(root=folder, import_sorting=sorting or ImportSorting(),
                  line_length=line_length)


# -- the ruff configuration that governs one file --------------------------------------------

_RUFF_DEFAULT_LINE_LENGTH = 88
_RUFF_DEFAULT_SRC = (".", "src")


def _read_toml(path: Path) -> dict[str, Any] | None:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


@functools.lru_cache(maxsize=1024)
def _ruff_table_in(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The ruff settings a folder holds, as ruff finds them: ``.ruff.toml``, ``ruff.toml``,
    then a ``pyproject.toml`` with a ``[tool.ruff]`` table (``extend`` followed)."""
    for name in (".ruff.toml", "ruff.toml"):
        path = folder / name
        if path.is_file():
            data = _read_toml(path)
            return (path, _extended(path, data)) if data is not None else None
    path = folder / "pyproject.toml"
    if path.is_file():
        data = _read_toml(path) or {}
        table = data.get("tool", {}).get("ruff") if isinstance(data.get("tool"), dict) else None
        if isinstance(table, dict):
            return path, _extended(path, table)
    return None


def _extended(path: Path, table: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """``table`` over the settings its ``extend`` names (as ruff merges them)."""
    extend = table.get("extend")
    if not isinstance(extend, str) or depth > 8:
        return table
    base_path = (path.parent / extend).resolve()
    data = _read_toml(base_path) or {}
    if base_path.name == "pyproject.toml":
        data = data.get("tool", {}).get("ruff", {}) if isinstance(data.get("tool"), dict) else {}
    base = _extended(base_path, data, depth + 1) if isinstance(data, dict) else {}
    return _merged(base, table)


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _package_of(path: Path) -> str | None:
    """The top-level package a file is in: its folder's name, up the ``__init__.py`` chain."""
    top = None
    folder = path.parent
    while (folder / "__init__.py").is_file():
        top, folder = folder.name, folder.parent
    return top


def ruff_settings_for(path: Path, fallback: ImportSorting) -> ImportSorting:
    """The import sorting and line length ruff applies to ``path``: from the nearest ruff
    configuration at or above its folder (ruff reads one config per file, the closest), or
    ``fallback`` (the project's isort/black settings) when no ruff configuration is found."""
    path = path.resolve()
    for folder in path.parents:
        found = _ruff_table_in(folder)
        if found is None:
            continue
        config, table = found
        sorting = _isort_settings({"tool": {"ruff": table}})
        line_length = table.get("line-length", _RUFF_DEFAULT_LINE_LENGTH)
        src = table.get("src", list(_RUFF_DEFAULT_SRC))
        if not (isinstance(src, list) and all(isinstance(item, str) for item in src)):
            src = list(_RUFF_DEFAULT_SRC)
        lint: dict[str, Any] = table["lint"] if isinstance(table.get("lint"), dict) else {}
        isort = lint.get("isort") or table.get("isort") or {}
        same_package = not isinstance(isort, dict) or isort.get("detect-same-package", True)
        return replace(
            sorting,
            src=tuple(str((config.parent / item).resolve()) for item in src),
            package=_package_of(path) if same_package else None,
            line_length=line_length if isinstance(line_length, int) else None,
        )
    return fallback
