"""Scheduled imports added as LibCST's ``AddImportsVisitor`` adds them, at a fraction of its cost.

``AddImportsVisitor`` walks the whole module twice (a gatherer, then the transform), yet all it
reads is the import block at the top of the module, and all it changes is that block and the
module's body. ``TopImportsAdder`` hands the gatherer only the module's leading statements and
does not descend into any other top-level statement; the result is LibCST's, byte for byte
(tests/engine/test_metadata_and_dispatch.py compares them).
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Sequence
from typing import Any, cast

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, _add_imports
from libcst.codemod.visitors._add_imports import _GatherTopImportsBeforeStatements
from libcst.helpers import get_full_name_for_node

from scaffold.config import ImportSorting
from scaffold.engine.fast._mode import is_plain
from scaffold.engine.fast.dispatch import FastTransformer, uses_matcher_decorators


def _is_import_line(statement: cst.CSTNode) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and any(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body
    )


class _Undecorated:
    """A LibCST visitor whose class has no matcher decorators skips the search for them.

    ``MatcherDecoratableTransformer.__init__`` (and the visitor's) reads every attribute
    ``dir(self)`` lists, three times, looking for ``@m.visit``-style decorators: about 7 ms
    per instance of an import visitor, paid for every changed file. Where the class has none
    the search finds nothing, so it is given nothing to read.
    """

    def __dir__(self) -> list[str]:
        if is_plain() or uses_matcher_decorators(type(self)):
            return list(super().__dir__())
        return []


class _TopImportsGatherer(_Undecorated, _GatherTopImportsBeforeStatements):
    def on_visit(self, node: cst.CSTNode) -> bool:
        # its visit_Import/visit_ImportFrom read the whole statement: nothing below it counts
        return super().on_visit(node) and not isinstance(node, (cst.Import, cst.ImportFrom))


class TopImportsAdder(_Undecorated, AddImportsVisitor, FastTransformer):
    """``AddImportsVisitor`` that only visits the top of the module (see the module docstring)."""

    def __init__(self, context: CodemodContext, *args: Any, **kwargs: Any) -> None:
        super().__init__(context, *args, **kwargs)
        self.fast_dispatch()

    def visit_Module(self, node: cst.Module) -> None:
        if is_plain():
            return super().visit_Module(node)
        # The gatherer stops at the first statement after the leading imports (a docstring
        # first is allowed): any prefix that holds that block tells it the same.
        end = 1
        while end < len(node.body) and _is_import_line(node.body[end]):
            end += 1
        # AddImportsVisitor.visit_Module builds its gatherer by this module-level name
        # (a LibCST private class, patched for the call: mypy forbids assigning to a class)
        _add_imports._GatherTopImportsBeforeStatements = _TopImportsGatherer  # type: ignore[misc]
        try:
            super().visit_Module(node.with_changes(body=node.body[:end]))
        finally:
            _add_imports._GatherTopImportsBeforeStatements = (  # type: ignore[misc]
                _GatherTopImportsBeforeStatements)

    def on_visit(self, node: cst.CSTNode) -> bool:
        if is_plain():
            return super().on_visit(node)
        if isinstance(node, (cst.BaseCompoundStatement, cst.SimpleStatementLine)) \
                and not _is_import_line(node):
            return False  # nothing below it is an import this visitor may edit
        # leave_ImportFrom rewrites the statement whole: its names need no visit of their own
        return super().on_visit(node) and not isinstance(node, (cst.Import, cst.ImportFrom))


# -- where the added imports go --

_FUTURE, _STDLIB, _THIRD_PARTY, _FIRST_PARTY, _LOCAL = range(5)
_Member = tuple[int, str, str, str]
_Key = tuple[int, int, str, _Member]
_NO_MEMBER: _Member = (0, "", "", "")
_BLANK = (cst.EmptyLine(),)


def _leading_imports(module: cst.Module) -> tuple[int, int]:
    """``[start, end)`` of the module's leading import block (after a docstring)."""
    start = 1 if module.body and _is_docstring(module.body[0]) else 0
    end = start
    while end < len(module.body) and _is_import_line(module.body[end]):
        end += 1
    return start, end


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1 \
        and isinstance(statement.body[0], cst.Expr) \
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))


def _member_key(alias: cst.ImportAlias) -> _Member:
    """ruff's ``order-by-type``: CONSTANTS, then Classes, then the rest, case-insensitively."""
    name = get_full_name_for_node(alias.name) or ""
    kind = 0 if len(name) > 1 and name.isupper() else 1 if name[:1].isupper() else 2
    asname = get_full_name_for_node(alias.asname.name) if alias.asname else ""
    return kind, name.lower(), name, asname or ""


def _sort_key(statement: cst.BaseStatement, first_party: Collection[str]) -> _Key | None:
    """isort's order with ruff's defaults: section, ``import x`` before ``from x import``,
    the module, then the first name; None for a line it does not place (``import a, b``)."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.ImportFrom) and isinstance(small.names, cst.ImportStar):
        return None
    if isinstance(small, cst.ImportFrom) and small.relative:
        assert not isinstance(small.names, cst.ImportStar)  # returned above
        module = get_full_name_for_node(small.module) if small.module else ""
        return (_LOCAL, 1, "." * len(small.relative) + (module or ""),
                _member_key(small.names[0]))
    if isinstance(small, cst.Import) and len(small.names) == 1:
        name, straight, first = get_full_name_for_node(small.names[0].name), 0, _NO_MEMBER
    elif isinstance(small, cst.ImportFrom) and small.module is not None:
        assert not isinstance(small.names, cst.ImportStar)  # returned above
        name, straight = get_full_name_for_node(small.module), 1
        first = _member_key(small.names[0])
    else:
        return None
    if name is None:
        return None
    top = name.split(".")[0]
    if top == "__future__":
        section = _FUTURE
    elif top in sys.stdlib_module_names:
        section = _STDLIB
    else:
        section = _FIRST_PARTY if top in first_party else _THIRD_PARTY
    return section, straight, name.lower(), first


def place_in_sections(before: cst.Module, after: cst.Module, first_party: Collection[str],
                      sorting: ImportSorting | None = None) -> cst.Module:
    """Put the imports ``TopImportsAdder`` added to ``before`` where isort (and ruff's ``I``
    rules, with their defaults) would have them.

    LibCST appends new lines after the block (``import contextvars`` after the relative
    imports), puts new names ahead of a line's own (``from m import get_tracer, SpanKind``)
    and an aliased name beside plain ones: a repo whose CI sorts imports rejects the result. A block
    that was not already in isort's order, or holds a line this does not understand, keeps
    LibCST's placement; so does a line with a comment among its names. ``first_party``: the
    repo's own top-level packages (the kit's), a section after third parties; ``sorting``:
    what the repo tells its import sorter (None: ruff's defaults).
    """
    sorting = sorting or ImportSorting()
    if not sorting.placeable:
        return after
    start, end = _leading_imports(before)
    new_start, new_end = _leading_imports(after)
    block: list[cst.BaseStatement] = list(after.body[new_start:new_end])
    if start == end:  # a new block: two blank lines before a def or class, as isort has it
        return after.with_changes(body=[*after.body[:new_end], *_two_blank_lines_before_def(
            after.body[new_end:])]) if block else after
    old_lines = list(before.body[start:end])
    old_keys = [_sort_key(line, first_party) for line in old_lines]
    if any(key is None for key in old_keys) or old_keys != sorted(old_keys):  # type: ignore
        return after
    # LibCST puts added __future__ imports at the top of the block, all others at its end
    futures = sum(1 for line in block if _section(line, first_party) == _FUTURE) - sum(
        1 for key in old_keys if key is not None and key[0] == _FUTURE)
    appended = len(block) - len(old_lines) - futures
    if futures < 0 or appended < 0:
        return after  # not the shape LibCST leaves: leave its placement alone
    placed: list[cst.BaseStatement] = block[:futures]
    pending: list[cst.SimpleStatementLine] = []  # lines to place by their key
    for old, new in zip(old_lines, block[futures:len(block) - appended], strict=True):
        kept, split = _split_new_aliases(old, new) if not sorting.combine_as else (new, [])
        placed.append(_sorted_members(kept) if _members_sorted(old) else kept)
        pending += split
    for line in block[len(block) - appended:]:
        kept, split = _split_new_aliases(None, line) if not sorting.combine_as else (line, [])
        pending += [_sorted_members(kept), *split]
    keys = [_sort_key(line, first_party) for line in placed]
    if any(key is None for key in keys):
        return after
    sorted_keys = cast(list[_Key], keys)
    for line in pending:
        key = _sort_key(line, first_party)
        if key is None:
            return after
        at = sum(1 for existing in sorted_keys if existing <= key)
        placed = _insert(placed, sorted_keys, at, line, key[0])
        sorted_keys.insert(at, key)
    return after.with_changes(body=[*after.body[:new_start], *placed, *after.body[new_end:]])


def _section(line: cst.BaseStatement, first_party: Collection[str]) -> int | None:
    key = _sort_key(line, first_party)
    return key[0] if key is not None else None


def _from_import(line: cst.BaseStatement | None) -> cst.ImportFrom | None:
    if isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1 and isinstance(
            line.body[0], cst.ImportFrom) and not isinstance(line.body[0].names, cst.ImportStar):
        return line.body[0]
    return None


def _split_new_aliases(old: cst.BaseStatement | None, new: cst.BaseStatement
                       ) -> tuple[cst.BaseStatement, list[cst.SimpleStatementLine]]:
    """isort keeps ``from m import a as b`` on a line of its own (``combine-as-imports`` is
    off by default): the aliased names this import pass added to ``new`` (not in ``old``)
    come out as lines of their own."""
    small = _from_import(new)
    if small is None or len(cast(Sequence[cst.ImportAlias], small.names)) < 2:
        return new, []
    names = cast(Sequence[cst.ImportAlias], small.names)
    old_small = _from_import(old)
    had = {_member_key(alias) for alias in cast(Sequence[cst.ImportAlias], old_small.names)} \
        if old_small is not None else set()
    moved = [alias for alias in names if alias.asname is not None and _member_key(alias) not in had]
    if not moved:
        return new, []
    stays = [alias for alias in names if all(alias is not other for other in moved)]
    lines = [cst.SimpleStatementLine(body=[small.with_changes(
        names=[alias.with_changes(comma=cst.MaybeSentinel.DEFAULT)],
        lpar=None, rpar=None)]) for alias in moved]
    if not stays:
        return lines[0], lines[1:]
    last = stays[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    kept = cast(cst.SimpleStatementLine, new).with_changes(
        body=[small.with_changes(names=[*stays[:-1], last])])
    return kept, lines


def _members_sorted(line: cst.BaseStatement) -> bool:
    small = _from_import(line)
    keys = [_member_key(alias) for alias in small.names] if small else []  # type: ignore
    return keys == sorted(keys)


def _sorted_members(line: cst.BaseStatement) -> cst.SimpleStatementLine:
    """A from-import with its names in isort's order, each comma (and layout) left where it
    was; unchanged when a comment sits among the names."""
    statement = cast(cst.SimpleStatementLine, line)
    small = _from_import(line)
    if small is None or "#" in cst.Module(body=[]).code_for_node(small):
        return statement
    names = cast(Sequence[cst.ImportAlias], small.names)
    ordered = sorted(names, key=_member_key)
    return statement.with_changes(body=[small.with_changes(names=[
        alias.with_changes(comma=slot.comma) for alias, slot in zip(ordered, names, strict=True)
    ])])


def _two_blank_lines_before_def(rest: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement]:
    first = rest[0] if rest else None
    if isinstance(first, (cst.FunctionDef, cst.ClassDef)):
        lines = first.decorators[0].leading_lines if first.decorators else first.leading_lines
        if len(lines) == 1 and lines[0].comment is None:
            if first.decorators:
                decorators = [first.decorators[0].with_changes(leading_lines=_BLANK * 2),
                              *first.decorators[1:]]
                return [first.with_changes(decorators=decorators), *rest[1:]]
            return [first.with_changes(leading_lines=_BLANK * 2), *rest[1:]]
    return list(rest)


def _insert(block: list[cst.BaseStatement], keys: list[_Key], at: int,
            line: cst.SimpleStatementLine, section: int) -> list[cst.BaseStatement]:
    """``block`` with ``line`` at ``at``, one blank line between sections as isort has it."""
    joins_previous = at > 0 and keys[at - 1][0] == section
    joins_next = at < len(block) and keys[at][0] == section
    if joins_previous:
        return [*block[:at], line.with_changes(leading_lines=()), *block[at:]]
    if at == len(block):  # a new last section
        return [*block, line.with_changes(leading_lines=_BLANK)]
    following = cast(cst.SimpleStatementLine, block[at])
    lines = following.leading_lines
    if joins_next:  # new first of its section: it takes the section's leading lines
        return [*block[:at], line.with_changes(leading_lines=lines),
                following.with_changes(leading_lines=()), *block[at + 1:]]
    # a section of its own before ``following``'s: blank lines (not comments) come along
    blanks = _blank_prefix(lines) if at == 0 else _BLANK
    rest = tuple(lines[len(blanks):]) if at == 0 else tuple(lines)
    if not rest or rest[0].comment is not None:
        rest = (*_BLANK, *rest)
    return [*block[:at], line.with_changes(leading_lines=blanks),
            following.with_changes(leading_lines=rest), *block[at + 1:]]


def _blank_prefix(lines: Sequence[cst.EmptyLine]) -> tuple[cst.EmptyLine, ...]:
    """The blank lines before the first comment."""
    prefix = []
    for empty in lines:
        if empty.comment is not None:
            break
        prefix.append(empty)
    return tuple(prefix)
