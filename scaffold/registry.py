"""Every rule the tool knows, codemods and checks: for selection, ``scaffold rules`` and SARIF.

The engine never imports this: it runs the rules it is given (``scaffold.api`` picks them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scaffold.checks import all_checks
from scaffold.codemods import all_codemods
from scaffold.engine.rule import Rule

if TYPE_CHECKING:  # mypy proves both bases are what the engine reads
    from scaffold.checks.base import Check
    from scaffold.codemods.base import Codemod
    from scaffold.engine.rule import CodemodRule

    _codemod: CodemodRule = Codemod
    _check: Rule = Check


def all_rules() -> tuple[Rule, ...]:
    """Codemods in run order, then checks by id."""
    return (*all_codemods(), *all_checks())


def all_rule_ids() -> set[str]:
    return {rule.ID for rule in all_rules()}
