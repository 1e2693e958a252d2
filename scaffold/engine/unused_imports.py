"""Scheduled import removals, decided by the standard library's ``ast`` and applied to the
import lines alone.

A codemod that drops the last use of a name (``Thread`` once the base is ``TracedThread``)
schedules its import for removal with LibCST's ``RemoveImportsVisitor.remove_unused_import``.
LibCST's own visitor then runs scope analysis over the whole module and rebuilds every node
to find out whether anything still references the name: on a large module that costs more
than parsing it. Here the question is answered from ``ast`` over the generated code (plus,
for a sliced module, the definitions left out of it), and only the top-level import lines
holding a scheduled alias, and the statements around them, are rebuilt, with LibCST's own
per-import logic (trailing commas, comments, parentheses).

The answer errs towards keeping: any plain name, any name in a string that is not a
docstring (``__all__``, string annotations) keeps the import, wherever the import is; an
import that is the whole of its block, or shares a line with its compound statement
(``if x: import y``), stays. An import kept that could have gone is a lint
finding; an import removed that was still used is a broken module.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import fields
from typing import Any, cast

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import RemoveImportsVisitor
from libcst.helpers import get_absolute_module_from_package_for_import

Scheduled = tuple[str, "str | None", "str | None"]  # (module, object, alias), as LibCST keeps them


def _joined(removed: Sequence[cst.EmptyLine],
            kept: Sequence[cst.EmptyLine]) -> list[cst.EmptyLine]:
    """The lines above a removed statement joined to those of the one after it: blank lines
    do not add up (one blank line around a removed section stays one)."""
    if any(line.comment is not None for line in removed):
        return [*removed, *kept]
    blank = 0
    while blank < len(kept) and kept[blank].comment is None:
        blank += 1
    return [*removed[:max(0, len(removed) - blank)], *kept]


class _AliasRemover(RemoveImportsVisitor):
    """LibCST's per-import removal, told which aliases are unused instead of finding out by
    a scope analysis of the whole module (its ``visit_Module`` is never reached: only import
    lines are visited)."""

    def __init__(self, context: CodemodContext, unused: Iterable[cst.ImportAlias],
                 owner: cst.Import | cst.ImportFrom) -> None:
        super().__init__(context)
        self._unused_imports = {alias: owner for alias in unused}


def _bound_name(alias: cst.ImportAlias, from_import: bool) -> str:
    """The local name an alias binds: ``as`` name, else the object, else the top package."""
    if alias.asname is not None:
        return cast(cst.Name, alias.asname.name).value
    name = alias.evaluated_name
    return name if from_import else name.split(".")[0]


def referenced_names(code: str) -> tuple[set[str], list[str]]:
    """Every plain name ``code`` uses outside its import statements, and its strings that
    are not docstrings (where a name may hide: ``__all__``, string annotations)."""
    tree = ast.parse(code)
    names: set[str] = set()
    strings: list[str] = []
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            docstrings.add(id(node.value))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                strings.append(node.value)
    return names, strings


def _used(name: str, names: set[str], strings: list[str],
          left_out_uses: Callable[[str], bool]) -> bool:
    if name in names or left_out_uses(name):
        return True
    word = re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")
    return any(name in text and word.search(text) for text in strings)


def _is_scheduled(alias: cst.ImportAlias, owner: cst.Import | cst.ImportFrom,
                  modules: dict[str, str | None], objects: dict[str, set[tuple[str, str | None]]],
                  package: str | None) -> bool:
    """Whether the removal LibCST would attempt for this alias was scheduled (its own test)."""
    if isinstance(owner, cst.Import):
        wanted = alias.evaluated_name
        return wanted in modules and alias.evaluated_alias == modules[wanted]
    module = get_absolute_module_from_package_for_import(package, owner)
    return module is not None and (alias.evaluated_name, alias.evaluated_alias) in objects.get(
        module, set())


_CLAUSES = (cst.Else, cst.If, cst.Finally, cst.ExceptHandler, cst.ExceptStarHandler,
            cst.MatchCase)


def _parts(node: cst.CSTNode) -> list[tuple[str, Any]]:
    """The fields of a compound statement that hold statements: its indented blocks, its
    clauses (``elif``, ``else``, handlers, ``finally``, cases) and lists of clauses."""
    found: list[tuple[str, Any]] = []
    for field in fields(node):
        value = getattr(node, field.name)
        if isinstance(value, (cst.IndentedBlock, *_CLAUSES)):
            found.append((field.name, value))
        elif isinstance(value, Sequence) and value and isinstance(value[0], _CLAUSES):
            found.append((field.name, value))
    return found


def _blocks(node: cst.CSTNode) -> Iterator[cst.IndentedBlock]:
    """The indented blocks of a compound statement, clauses included; a one-line suite
    (``if x: import y``) is not one, and is left alone."""
    for _, value in _parts(node):
        for part in value if isinstance(value, Sequence) else (value,):
            if isinstance(part, cst.IndentedBlock):
                yield part
            else:
                yield from _blocks(part)


class _Removal:
    """One removal pass: finds the scheduled aliases statement by statement (expressions are
    never entered), then rebuilds only the statements on the way to the unused ones."""

    def __init__(self, scheduled: Sequence[Scheduled], context: CodemodContext,
                 left_out_uses: Callable[[str], bool]) -> None:
        self.context = context
        self.left_out_uses = left_out_uses
        self.modules = {name: asname for name, obj, asname in scheduled if obj is None}
        self.objects: dict[str, set[tuple[str, str | None]]] = {}
        for name, obj, asname in scheduled:
            if obj is not None:
                self.objects.setdefault(name, set()).add((obj, asname))
        # id(import statement) -> its scheduled aliases, and whether it is ``from ... import``
        self.candidates: dict[int, tuple[list[cst.ImportAlias], bool]] = {}
        self.on_path: set[int] = set()  # ids of statements and blocks holding a candidate
        self.unused: set[int] = set()  # ids of the candidate aliases nothing references

    def find(self, statements: Sequence[cst.BaseStatement]) -> bool:
        holds = False
        for statement in statements:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if self._scheduled_in(small):
                        holds = True
                        self.on_path.add(id(statement))
            else:
                for block in _blocks(statement):
                    if self.find(block.body):
                        holds = True
                        self.on_path.update((id(statement), id(block)))
        return holds

    def _scheduled_in(self, small: cst.BaseSmallStatement) -> bool:
        if not isinstance(small, (cst.Import, cst.ImportFrom)) or isinstance(
                small.names, cst.ImportStar):
            return False
        aliases = [alias for alias in cast(Sequence[cst.ImportAlias], small.names)
                   if _is_scheduled(alias, small, self.modules, self.objects,
                                    self.context.full_package_name)]
        if aliases:
            self.candidates[id(small)] = aliases, isinstance(small, cst.ImportFrom)
        return bool(aliases)

    def decide(self, code: str) -> None:
        names, strings = referenced_names(code)
        for aliases, from_import in self.candidates.values():
            for alias in aliases:
                if not _used(_bound_name(alias, from_import), names, strings,
                             self.left_out_uses):
                    self.unused.add(id(alias))

    def block(self, statements: Sequence[cst.BaseStatement]
              ) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
        """The statements with the unused aliases gone, and the lines above a removed
        statement left over at the end of the block."""
        kept: list[cst.BaseStatement] = []
        pending: list[cst.EmptyLine] = []
        for statement in statements:
            rebuilt = self.statement(statement) if id(statement) in self.on_path else statement
            if rebuilt is None:
                pending.extend(cast(cst.SimpleStatementLine, statement).leading_lines)
                continue
            if pending:
                lines = cast("cst.SimpleStatementLine | cst.BaseCompoundStatement", rebuilt)
                rebuilt = lines.with_changes(leading_lines=_joined(pending, lines.leading_lines))
                pending = []
            kept.append(rebuilt)
        return kept, pending

    def statement(self, statement: cst.BaseStatement) -> cst.BaseStatement | None:
        if isinstance(statement, cst.SimpleStatementLine):
            smalls: list[cst.BaseSmallStatement] = []
            for small in statement.body:
                aliases = self.candidates.get(id(small), ([], False))[0]
                unused = [alias for alias in aliases if id(alias) in self.unused]
                if not unused:
                    smalls.append(small)
                    continue
                owner = cast("cst.Import | cst.ImportFrom", small)
                result = owner.visit(_AliasRemover(self.context, unused, owner))
                if isinstance(result, cst.BaseSmallStatement):
                    smalls.append(result)
            if not smalls:
                return None
            if len(smalls) != len(statement.body):  # ``import a; import b``
                smalls[-1] = smalls[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
            return statement.with_changes(body=smalls)
        return self._compound(statement)

    def _compound(self, node: cst.CSTNode) -> Any:
        changes: dict[str, Any] = {}
        for name, value in _parts(node):
            if isinstance(value, Sequence):
                rebuilt_items = [self._compound(item) for item in value]
                if any(new is not old for new, old in zip(rebuilt_items, value, strict=True)):
                    changes[name] = rebuilt_items
            elif isinstance(value, cst.IndentedBlock):
                if id(value) not in self.on_path:
                    continue
                body, pending = self.block(value.body)
                if body:  # an emptied block keeps its imports: ``pass`` would be new code
                    changes[name] = value.with_changes(body=body, footer=[*pending,
                                                                         *value.footer])
            else:
                rebuilt = self._compound(value)
                if rebuilt is not value:
                    changes[name] = rebuilt
        return node.with_changes(**changes) if changes else node


def remove_unused_imports(
    module: cst.Module, scheduled: Sequence[Scheduled], context: CodemodContext, *,
    left_out_uses: Callable[[str], bool] = lambda name: False,
) -> cst.Module:
    """``module`` without the scheduled imports nothing references any more."""
    removal = _Removal(scheduled, context, left_out_uses)
    if not removal.find(module.body):
        return module
    removal.decide(module.code)
    if not removal.unused:
        return module
    body, pending = removal.block(module.body)
    if pending:  # the module ended with the removed imports: their comments stay
        return module.with_changes(body=body, footer=[*pending, *module.footer])
    return module.with_changes(body=body)
