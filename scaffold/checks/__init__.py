"""Lint-only checks: one module a check, found by walking this package (as pyupgrade does).

Adding a check is adding a module; its id is the module name in kebab-case.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from scaffold.checks.base import Check


@cache
def all_checks() -> tuple[type[Check], ...]:
    """Every check class, ordered by id."""
    found: list[type[Check]] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.extend(
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, Check)
            and value is not Check
            and value.__module__ == module.__name__
        )
    return tuple(sorted(found, key=lambda check: check.ID))


def checks_by_id() -> dict[str, type[Check]]:
    return {check.ID: check for check in all_checks()}
