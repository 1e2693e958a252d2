"""What a rule is to the engine, and what every rule may lean on.

A rule is a codemod class (``scaffold.codemods.base.Codemod``) or a check class
(``scaffold.checks.base.Check``). The engine is handed rules (``scaffold.registry`` knows them
all) and reads only what this module declares.
"""

from __future__ import annotations

from typing import Any

import libcst as cst

Rule = Any  # a Codemod or Check subclass: ID, SUMMARY, PREFILTER, wants(), findings after a visit


def dotted_name(node: cst.CSTNode) -> str | None:
    """``a.b.c`` for a chain of names and attributes; ``None`` for anything else."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    return None
