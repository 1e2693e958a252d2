"""Every rule the tool knows, codemods and checks, for selection, ``scaffold rules`` and SARIF."""

from __future__ import annotations

from typing import Any


def all_rules() -> tuple[Any, ...]:
    """Codemods in run order, then checks by id."""
    from scaffold.checks import all_checks
    from scaffold.codemods import all_codemods

    return (*all_codemods(), *all_checks())


def all_rule_ids() -> set[str]:
    return {rule.ID for rule in all_rules()}
