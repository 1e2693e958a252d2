"""Layers import one way: every ``scaffold`` module imports only its own layer and those below.

The order, bottom first, is docs/architecture.md's table. Every import counts: at the top,
inside functions (lazy), and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "scaffold"

# (layer, module prefixes), bottom first; the longest matching prefix decides a module's layer
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("scaffold", "scaffold.config", "scaffold.errors", "scaffold.resources",
                    "scaffold.kit_api", "scaffold.repo")),
    ("engine", ("scaffold.engine",)),
    ("rules", ("scaffold.codemods", "scaffold.checks", "scaffold.registry")),
    ("services", ("scaffold.emitted", "scaffold.kit", "scaffold.vendor", "scaffold.dependencies",
                  "scaffold.testgen", "scaffold.new_service")),
    ("api", ("scaffold.api",)),
    ("commands", ("scaffold.commands",)),
    ("entry", ("scaffold.cli", "scaffold.__main__", "scaffold.mutation")),
)
RANK = {name: rank for rank, (name, _) in enumerate(LAYERS)}


def layer_of(module: str) -> str:
    """The layer of a dotted module: its longest matching prefix (``scaffold`` alone is the
    package's ``__init__``, the version)."""
    best: tuple[int, str] | None = None
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            if module == prefix or (prefix != "scaffold" and module.startswith(prefix + ".")):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), name)
    if best is None:
        raise LookupError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")
    return best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, package: bool = False) -> set[str]:
    """The ``scaffold`` modules ``source`` (the module ``module``) imports, anywhere in it;
    ``from scaffold import x`` names ``scaffold.x`` when ``x`` is a module, else ``scaffold``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names
                         if _is_module(f"{target}.{alias.name}"))
    return {name for name in found if name == "scaffold" or name.startswith("scaffold.")}


def _is_module(dotted: str) -> bool:
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def upward_imports(module: str, imported: set[str]) -> list[str]:
    """``imported`` modules above ``module``'s layer, as ``module -> name (layer)``."""
    own = RANK[layer_of(module)]
    return [f"{module} ({layer_of(module)}) -> {name} ({layer_of(name)})"
            for name in sorted(imported) if RANK[layer_of(name)] > own]


def _modules() -> list[tuple[str, Path]]:
    return sorted((module_name(path), path) for path in PACKAGE.rglob("*.py")
                  if "_data" not in path.relative_to(PACKAGE).parts)


def test_every_module_is_in_a_layer():
    assert [module for module, _ in _modules() if not _has_layer(module)] == []


def _has_layer(module: str) -> bool:
    try:
        layer_of(module)
    except LookupError:
        return False
    return True


def test_no_module_imports_up_a_layer():
    upward = []
    for module, path in _modules():
        imported = imports_of(path.read_text(encoding="utf-8"), module,
                              package=path.name == "__init__.py")
        upward.extend(upward_imports(module, imported))
    assert upward == []


def test_the_engine_imports_only_itself_and_the_foundation():
    outside = {
        name
        for module, path in _modules() if layer_of(module) == "engine"
        for name in imports_of(path.read_text(encoding="utf-8"), module,
                               package=path.name == "__init__.py")
        if layer_of(name) != "engine"
    }
    assert outside <= {"scaffold", "scaffold.config", "scaffold.errors", "scaffold.repo"}


@pytest.mark.parametrize(("module", "source"), [
    ("scaffold.engine.runner", "from scaffold import vendor\n"),
    ("scaffold.engine.command", "def f():\n    from scaffold.cli import UsageError\n"),
    ("scaffold.checks._syntax", "from scaffold.api import run\n"),
    ("scaffold.engine.report", "from ..registry import all_rules\n"),
    ("scaffold.engine.runner", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                               "    import scaffold.testgen.locate\n"),
])
def test_an_import_up_a_layer_is_caught(module, source):
    assert len(upward_imports(module, imports_of(source, module))) == 1


def test_imports_down_and_across_are_allowed():
    source = ("from scaffold.engine.model import Settings\nfrom scaffold.checks import base\n"
              "from scaffold import __version__\n")
    assert upward_imports("scaffold.codemods.base", imports_of(source, "scaffold.codemods.base")) \
        == []


def test_commands_call_only_the_api():
    """A command parses flags and prints; what it does is ``scaffold.api``'s (add a function
    there rather than importing the engine, the rules or a service from a command)."""
    allowed = {"scaffold", "scaffold.api", "scaffold.errors"}
    reached = {
        f"{module} -> {name}"
        for module, path in _modules() if layer_of(module) == "commands"
        for name in imports_of(path.read_text(encoding="utf-8"), module,
                               package=path.name == "__init__.py")
        if name not in allowed and not name.startswith("scaffold.commands")
    }
    assert reached == set()
