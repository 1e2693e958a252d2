"""The versions the kit is tested with: one list, in step with the kit, new services and metadata.

Retrofit asks a repo for lower bounds (tests/vendor/test_dependencies.py); this list is what
new services pin and what the test suite installs.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

from scaffold.dependencies import (
    FLOORS,
    installed_kit_requirements,
    kit_requirements,
    version_key,
)
from scaffold.kit import kit_sources
from scaffold.resources import template_root

REPO = Path(__file__).resolve().parents[2]


def _distribution(requirement: str) -> str:
    return re.split(r"[=<>!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


# -- the list itself: one place, in step with the kit, new services and the installed metadata --


def test_the_requirements_are_the_kit_extra_of_scaffolds_pyproject():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert kit_requirements() == tuple(extras["kit"])
    assert all(re.fullmatch(r"[a-z-]+==[0-9.a-z]+", spec) for spec in kit_requirements())
    assert "scaffold-tracing[kit]" in extras["test"]


def test_the_installed_metadata_lists_the_same_requirements():
    """What a wheel install reads; a stale editable install needs `pip install -e '.[test]'`."""
    assert sorted(installed_kit_requirements()) == sorted(kit_requirements())


def test_new_services_declare_the_same_pins():
    template = (template_root() / "templates" / "service" / "pyproject.toml.jinja").read_text()
    assert [spec for spec in kit_requirements() if f'"{spec}",' not in template] == []


def _module_owners() -> dict[str, str]:
    """Installed OpenTelemetry module -> the distribution that ships it."""
    owners = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"].lower()
        if not name.startswith("opentelemetry"):
            continue
        for file in dist.files or ():
            if file.suffix == ".py" and file.parts[0] == "opentelemetry":
                parts = file.with_suffix("").parts
                owners[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = name
    return owners


def test_every_opentelemetry_module_the_kit_imports_comes_from_a_listed_requirement():
    imported = set()  # modules, or for `from package import name` possibly package.name
    for text in kit_sources(package_name="orders").values():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    owners = _module_owners()
    needed = {owners[module] for module in imported if module in owners}

    assert needed == {_distribution(spec) for spec in kit_requirements()}


def test_every_floor_retrofit_asks_for_is_at_most_the_tested_version():
    tested = {_distribution(spec): spec.partition("==")[2] for spec in kit_requirements()}
    assert set(FLOORS) <= set(tested)
    assert all(version_key(FLOORS[name]) <= version_key(tested[name]) for name in FLOORS)


def _import_time_modules(text: str) -> set[str]:
    """Modules a kit file imports when it is imported: top level, outside TYPE_CHECKING."""
    imported = set()
    for node in ast.parse(text).body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module)
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    return imported


def test_importing_the_library_modules_needs_only_the_api():
    """The fast twin of tests/kit/test_api_only.py: only set-up and test support need more."""
    owners = _module_owners()
    needed = {
        name: {owners[module] for module in _import_time_modules(text) if module in owners}
        for name, text in kit_sources(package_name="orders").items() if name != "testing.py"
    }
    assert needed == {
        "__init__.py": set(), "threads.py": set(), "tokens.py": {"opentelemetry-api"},
        "envelope.py": {"opentelemetry-api"}, "kafka.py": {"opentelemetry-api"},
        "tracing.py": {"opentelemetry-api"}}
