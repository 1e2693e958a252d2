"""Scheduled imports added as LibCST's ``AddImportsVisitor`` adds them, at a fraction of its cost.

``AddImportsVisitor`` walks the whole module twice (a gatherer, then the transform), yet all it
reads is the import block at the top of the module, and all it changes is that block and the
module's body. ``TopImportsAdder`` hands the gatherer only the module's leading statements and
does not descend into any other top-level statement; the result is LibCST's, byte for byte
(tests/engine/test_metadata_and_dispatch.py compares them).
"""

from __future__ import annotations

from typing import Any

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from scaffold.engine.dispatch import FastTransformer


def _is_import_line(statement: cst.CSTNode) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and any(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body
    )


class TopImportsAdder(AddImportsVisitor, FastTransformer):
    """``AddImportsVisitor`` that only visits the top of the module (see the module docstring)."""

    def __init__(self, context: CodemodContext, *args: Any, **kwargs: Any) -> None:
        super().__init__(context, *args, **kwargs)
        self.fast_dispatch()

    def visit_Module(self, node: cst.Module) -> None:
        # The gatherer stops at the first statement after the leading imports (a docstring
        # first is allowed): any prefix that holds that block tells it the same.
        end = 1
        while end < len(node.body) and _is_import_line(node.body[end]):
            end += 1
        super().visit_Module(node.with_changes(body=node.body[:end]))

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.BaseCompoundStatement, cst.SimpleStatementLine)) \
                and not _is_import_line(node):
            return False  # nothing below it is an import this visitor may edit
        return super().on_visit(node)
