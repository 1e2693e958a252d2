"""The kit names scaffold writes and looks for (``scaffold.kit_api``) are the rendered kit's."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType

import scaffold
from scaffold import kit_api

PACKAGE = Path(scaffold.__file__).parent


def _constants() -> dict[str, str]:
    return {name: value for name, value in vars(kit_api).items()
            if name.isupper() and isinstance(value, str)}


def test_every_name_scaffold_uses_is_exported_by_the_rendered_kit(kit_package: ModuleType):
    missing = sorted(name for name in kit_api.NAMES
                     if name not in kit_package.__all__ or not hasattr(kit_package, name))
    assert missing == []


def test_every_module_named_is_a_module_of_the_kit(kit_package: ModuleType):
    for module in kit_api.MODULES:
        assert importlib.import_module(f"{kit_package.__name__}.{module}").__file__


def test_the_package_name_is_the_rendered_kits(kit_package: ModuleType):
    assert kit_package.__name__.rpartition(".")[2] == kit_api.KIT_PACKAGE


def test_no_other_module_spells_the_kits_package_name():
    """The kit's package name is written once, in ``scaffold.kit_api``."""
    found = sorted(
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for path in PACKAGE.rglob("*.py") if path.name != "kit_api.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in (kit_api.KIT_PACKAGE,
                                                              kit_api.KIT_PACKAGE.encode())
    )
    assert found == []


def test_every_constant_is_in_names_or_modules():
    """A constant added to the module without joining ``NAMES`` would escape the checks above."""
    listed = kit_api.NAMES | kit_api.MODULES | {kit_api.KIT_PACKAGE}
    assert sorted(set(_constants().values()) - listed) == []
