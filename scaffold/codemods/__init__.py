"""Retrofit codemods: one module a codemod, found by walking this package (as pyupgrade does).

Adding a codemod is adding a module and putting its id in ``ORDER``: the codemods of a file
run in that order on one parsed tree. The order is fixed so results never depend on the
command line: context-safety rewrites first (they fix code the later codemods build on),
then the propagation codemods of later issues (kafka-produce, kafka-consume, envelope-inject,
envelope-restore, http-inject) and the bootstrap last.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from scaffold.codemods.base import Codemod

ORDER: tuple[str, ...] = (
    "opentracing-scope",
    "token-finally",
    "thread-context",
    "kafka-produce",
    "kafka-consume",
    "redis-queue",
    "envelope-inject",
    "envelope-restore",
    "http-inject",
    "bootstrap",
)


@cache
def all_codemods() -> tuple[type[Codemod], ...]:
    """Every codemod class, in ``ORDER``; a module missing from ORDER is a programming error."""
    found: dict[str, type[Codemod]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Codemod)
                and value is not Codemod
                and value.__module__ == module.__name__
            ):
                found[value.ID] = value
    unordered = sorted(set(found) - set(ORDER))
    if unordered:
        raise RuntimeError(f"codemods missing from scaffold.codemods.ORDER: {unordered}")
    return tuple(found[codemod_id] for codemod_id in ORDER if codemod_id in found)


def codemods_by_id() -> dict[str, type[Codemod]]:
    return {codemod.ID: codemod for codemod in all_codemods()}
