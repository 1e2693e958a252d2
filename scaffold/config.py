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

A key this module does not know is an error naming the key and the file (exit 2), so a typo
never silently turns a setting off. Adding a key for a later feature is one line in ``_KEYS``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """The configuration is unreadable or invalid; the message names the key and the file."""


@dataclass(frozen=True)
class ImportSorting:
    """What the repo tells its import sorter (ruff's isort rules, or isort), as far as placing
    an added import needs it."""

    first_party: tuple[str, ...] = ()  # known-first-party
    combine_as: bool = False  # combine-as-imports: ``a, b as c`` on one line
    placeable: bool = True  # False: an order this does not model; LibCST's placement stands


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
    kafka_producers: tuple[str, ...] = ()
    add_dependencies: bool = True  # retrofit adds what rewritten code imports to the manifest
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # what the repo's import sorter is told (ruff's or isort's settings in the same
    # pyproject.toml): added imports are placed the way it would place them
    import_sorting: ImportSorting = field(default_factory=ImportSorting)

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
    """The isort settings of a pyproject.toml: ruff's (``[tool.ruff.lint.isort]``, the older
    ``[tool.ruff.isort]``) or isort's own (``[tool.isort]``, underscores)."""
    tool = data.get("tool", {})
    ruff = tool.get("ruff") if isinstance(tool.get("ruff"), dict) else {}
    lint = ruff.get("lint") if isinstance(ruff.get("lint"), dict) else {}
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
                  import_sorting=_import_sorting(data), **values)


def find_config(start: Path) -> Config:
    """The nearest ``pyproject.toml`` with a ``[tool.scaffold]`` table at or above ``start``.

    Without one, defaults anchored at ``start`` (a folder, or a file's folder).
    """
    start = start.resolve()
    folder = start if start.is_dir() else start.parent
    sorting: ImportSorting | None = None  # of the nearest pyproject.toml, if none has a table
    for candidate in (folder, *folder.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file():
            config = load_config(pyproject)
            if config is not None:
                return config
            if sorting is None:
                sorting = _import_sorting(tomllib.loads(pyproject.read_text("utf-8")))
    return Config(root=folder, import_sorting=sorting or ImportSorting())
