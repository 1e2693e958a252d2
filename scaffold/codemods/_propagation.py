"""What the propagation codemods share: where the helpers come from, and statement edits.

Not a codemod (the leading underscore keeps it out of the registry). The envelope, HTTP and
bootstrap codemods all find a statement on the original tree, then insert glue before it or
replace it; ``StatementEditor`` does that splice once per block, on the updated tree, so a
rewrite nested inside a replaced statement is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import libcst as cst
from libcst.metadata import QualifiedNameProvider

from scaffold.codemods.base import Codemod
from scaffold.engine.fast import FastVisitor
from scaffold.engine.gates import SyntaxIndex

# Calls that write trace context into a carrier: OpenTelemetry's, HuleEdu's and the kit's.
INJECT_NAMES = frozenset({"inject", "inject_trace_context", "inject_metadata", "inject_headers"})
EXTRACT_NAMES = frozenset({"extract", "extract_trace_context"})
ENVELOPE_SUFFIXES = ("Envelope",)  # class names of event envelopes end in one of these


def names_ending_in(index: SyntaxIndex, suffixes: tuple[str, ...]) -> frozenset[str]:
    """The identifiers of a file ending in one of ``suffixes`` (``EventEnvelope``), and the
    local names its imports bind to such a name (``from events import EventEnvelope as E``):
    what a rule matching envelope classes by suffix follows, for slicing."""
    found = {word for word in index.words if word.endswith(suffixes)}
    found.update(local for local, targets in index.imports.items()
                 if any(target.endswith(suffixes) for target in targets))
    return frozenset(found)

# every statement LibCST has; ``BaseStatement`` itself declares no ``leading_lines``/``body``
Statement = cst.SimpleStatementLine | cst.BaseCompoundStatement
# the updated form of the replaced statement (same type as the original) -> what goes there
Replacement = Callable[[Any], Sequence[cst.BaseStatement]]


def code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def last_name(expr: cst.CSTNode) -> str | None:
    """``publish`` for ``self._bus.publish``; the class for ``EventEnvelope[T]``."""
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    if isinstance(expr, cst.Subscript):
        return last_name(expr.value)
    return None


def positional(call: cst.Call, index: int, keyword: str | None = None) -> cst.Arg | None:
    """The argument passed for a parameter, by keyword or position (None under ``*args``)."""
    number = 0
    for arg in call.args:
        if arg.keyword is not None:
            if arg.keyword.value == keyword:
                return arg
        elif arg.star:
            return None
        else:
            if number == index:
                return arg
            number += 1
    return None


def keyword(call: cst.Call, name: str) -> cst.Arg | None:
    return next((arg for arg in call.args if arg.keyword and arg.keyword.value == name), None)


class _Collector(FastVisitor):
    """Calls and loaded names of one piece of code, not looking inside nested scopes."""

    def __init__(self) -> None:
        self.calls: list[cst.Call] = []
        self.names: set[str] = set()

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append(node)

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)  # a keyword is not a use of a name
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False


def collect(*nodes: cst.CSTNode) -> _Collector:
    found = _Collector()
    for node in nodes:
        node.visit(found)
    return found


def assignments(statement: cst.BaseStatement) -> list[tuple[str, cst.BaseExpression | None]]:
    """(name, value) for every plain name a simple statement binds (value None: not known)."""
    found: list[tuple[str, cst.BaseExpression | None]] = []
    if not isinstance(statement, cst.SimpleStatementLine):
        return found
    for small in statement.body:
        if isinstance(small, cst.Assign):
            for target in small.targets:
                if isinstance(target.target, cst.Name):
                    found.append((target.target.value, small.value))
        elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
            if isinstance(small.target, cst.Name):
                value = small.value if isinstance(small, cst.AnnAssign) else None
                found.append((small.target.value, value))
    return found


def header(statement: cst.BaseStatement) -> list[cst.CSTNode]:
    """What a statement evaluates itself, before (or instead of) any nested block."""
    if isinstance(statement, cst.SimpleStatementLine):
        return [statement]
    if isinstance(statement, (cst.If, cst.While)):
        return [statement.test]
    if isinstance(statement, cst.For):
        return [statement.iter]
    if isinstance(statement, cst.With):
        return list(statement.items)
    if isinstance(statement, cst.Match):
        return [statement.subject]
    return []


def blocks(statement: cst.BaseStatement) -> list[cst.BaseSuite | cst.If]:
    """The nested blocks of a compound statement in source order; an ``elif`` is its ``If``.

    Nested functions and classes are scopes of their own and have none here.
    """
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef, cst.SimpleStatementLine)):
        return []
    if isinstance(statement, cst.Match):
        return [case.body for case in statement.cases]
    found: list[cst.BaseSuite | cst.If] = [cast(cst.BaseCompoundStatement, statement).body]
    found.extend(handler.body for handler in getattr(statement, "handlers", ()))
    orelse = getattr(statement, "orelse", None)
    if orelse is not None:
        found.append(orelse if isinstance(orelse, cst.If) else orelse.body)
    final = getattr(statement, "finalbody", None)
    if final is not None:
        found.append(final.body)
    return found


@dataclass(frozen=True)
class Place:
    """A statement and the path of (block, index) pairs leading to it from the function body."""

    statement: cst.BaseStatement
    chain: tuple[tuple[int, int], ...]
    in_block: bool  # False inside a one-line suite (``if x: stmt``), where nothing can be inserted

    def dominates(self, later: Place) -> bool:
        """True when this statement always runs before ``later`` (structured code, no jumps)."""
        depth = len(self.chain) - 1
        if depth >= len(later.chain) or self.chain[:depth] != later.chain[:depth]:
            return False
        (block, index), (other_block, other_index) = self.chain[depth], later.chain[depth]
        return block == other_block and index < other_index


def walk(suite: cst.BaseSuite | Sequence[cst.BaseStatement],
         chain: tuple[tuple[int, int], ...] = ()) -> Iterator[Place]:
    """Every statement of a body and its nested blocks, not entering nested functions/classes.

    The small statements of a one-line suite (``if x: publish(e)``) come as one synthetic
    line that is not ``in_block``: code can be found there but nothing inserted.
    """
    if isinstance(suite, cst.SimpleStatementSuite):
        yield Place(cst.SimpleStatementLine(body=suite.body), (*chain, (id(suite), 0)), False)
        return
    statements: Sequence[cst.BaseStatement] = (
        suite.body if isinstance(suite, cst.IndentedBlock) else suite  # type: ignore[assignment]
    )
    for index, statement in enumerate(statements):
        here = (*chain, (id(suite), index))
        yield Place(statement, here, True)
        yield from _nested(statement, here)


def _nested(statement: cst.BaseStatement, here: tuple[tuple[int, int], ...]) -> Iterator[Place]:
    for block in blocks(statement):
        if isinstance(block, cst.If):  # an elif: its test runs only when the if's did not
            inner = (*here, (id(block), 0))
            yield Place(block, inner, False)
            yield from _nested(block, inner)
        else:
            yield from walk(block, here)


def statements_of(suite: cst.BaseSuite) -> Sequence[cst.BaseStatement]:
    """A block's statements; a one-line suite's small statements as one line."""
    if isinstance(suite, cst.IndentedBlock):
        return suite.body
    return [cst.SimpleStatementLine(body=cast(cst.SimpleStatementSuite, suite).body)]


def is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def with_comment(statement: cst.BaseStatement,
                 comment: cst.Comment | None) -> cst.BaseStatement:
    """``statement`` carrying ``comment`` at the end of its first line (when it has none)."""
    if comment is None:
        return statement
    if isinstance(statement, cst.SimpleStatementLine):
        if statement.trailing_whitespace.comment is None:
            return statement.with_changes(trailing_whitespace=cst.TrailingWhitespace(
                whitespace=cst.SimpleWhitespace("  "), comment=comment))
        return statement
    body = getattr(statement, "body", None)
    if isinstance(body, cst.IndentedBlock) and body.header.comment is None:
        return statement.with_changes(body=body.with_changes(header=cst.TrailingWhitespace(
            whitespace=cst.SimpleWhitespace("  "), comment=comment)))
    return statement


def header_comment(statement: cst.BaseStatement) -> cst.Comment | None:
    """The comment at the end of a statement's first line (a compound statement's ``:`` line)."""
    if isinstance(statement, cst.SimpleStatementLine):
        return statement.trailing_whitespace.comment
    body = getattr(statement, "body", None)
    if isinstance(body, cst.IndentedBlock):
        return body.header.comment
    return None


class PropagationCodemod(Codemod):
    """A codemod that edits whole statements: inserts glue before one, or replaces one.

    Subclasses decide on the original tree (``insert_before`` / ``replace_statement``) and the
    splice happens in ``leave_IndentedBlock`` / ``leave_Module`` on the updated statements.
    """

    METADATA_DEPENDENCIES = (QualifiedNameProvider,)

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._before: dict[cst.BaseStatement, list[cst.BaseStatement]] = {}
        self._replacements: dict[cst.BaseStatement, Replacement] = {}
        self._own_lines: set[cst.BaseStatement] = set()  # replacements that set their lines

    # -- names, alias-aware --

    def names_of(self, expr: cst.CSTNode) -> set[str]:
        """The last component of what ``expr`` names: as written and, through the file's
        imports, as defined (``from x import inject as put`` -> ``{"put", "inject"}``)."""
        found = {name.rsplit(".", 1)[-1] for name in self.qualified_names(expr)}
        written = last_name(expr)
        return found | {written} if written else found

    def calls_one_of(self, call: cst.Call, names: Iterable[str] | str) -> bool:
        wanted = {names} if isinstance(names, str) else set(names)
        if last_name(call.func) in wanted:
            return True
        if not self.may_end_in(call.func, wanted):  # answered without scope analysis
            return False
        return bool(self.names_of(call.func) & wanted)

    def is_envelope_class(self, expr: cst.CSTNode) -> bool:
        """``expr`` names a class called ``...Envelope`` (``EventEnvelope[T]`` too), or ending
        in one of the configured ``envelope-suffixes``."""
        target = expr.value if isinstance(expr, cst.Subscript) else expr
        suffixes = tuple(self.options.get("envelope_suffixes", ENVELOPE_SUFFIXES))
        return any(name.endswith(suffixes) for name in self.names_of(target))

    # -- where the helpers come from --

    @property
    def kit(self) -> str | None:
        """Import path of the repo's kit (``pkg.tracekit``), when it has one."""
        return self.settings.kit

    def helper(self, name: str) -> str | None:
        """A HuleEdu-named function (``inject_trace_context``, ``init_tracing``, ...): from the
        configured helper module, imported the way the file imports it, else from the kit."""
        module = self.settings.helper_module or self.kit
        return self.name_for(module, name) if module else None

    @property
    def kit_function_available(self) -> bool:
        """Whether functions only the kit has can be called: a kit, and no helper module."""
        return bool(self.kit) and not self.settings.helper_module

    def kit_function(self, name: str) -> str | None:
        """A function only the kit has (``inject_metadata``, ``restore_span``, ...), imported."""
        return self.name_for(self.kit, name) if self.kit and self.kit_function_available else None

    def otel(self, module: str, name: str) -> str:
        return self.name_for(module, name)

    # -- statement edits --

    def insert_before(self, original: cst.BaseStatement,
                      statements: Sequence[cst.BaseStatement]) -> None:
        self._before.setdefault(original, []).extend(statements)

    def replace_statement(self, original: cst.BaseStatement,
                          replacement: Replacement, *, own_lines: bool = False) -> None:
        """Replace a statement by what ``replacement`` makes of its updated form ([] drops it).

        A second replacement of the same statement applies to each result of the first. The
        lines above the statement stay above what replaces it, unless ``own_lines``: then the
        replacement's first statement brings its own (a comment it corrected).
        """
        if own_lines:
            self._own_lines.add(original)
        earlier = self._replacements.get(original)
        if earlier is not None:
            first = earlier
            self._replacements[original] = lambda statement: [
                result for made in first(statement) for result in replacement(made)]
        else:
            self._replacements[original] = replacement

    def _splice(self, originals: Sequence[cst.BaseStatement],
                updated: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement] | None:
        if not any(s in self._before or s in self._replacements for s in originals):
            return None
        body: list[cst.BaseStatement] = []
        orphaned: Sequence[cst.EmptyLine] = ()  # the lines above a dropped statement
        for original, updated_statement in zip(originals, updated, strict=True):
            statement = cast(Statement, updated_statement)
            new = [cast(Statement, made) for made in self._replacements[original](statement)] \
                if original in self._replacements else [statement]
            new = [*cast(list[Statement], self._before.get(original, [])), *new]
            if not new:
                orphaned = [*orphaned, *statement.leading_lines]
                continue
            if len(new) > 1 or new[0] is not statement or orphaned:
                # blank lines and comments above the statement stay above whatever replaces it
                own = statement.leading_lines if new[0] is not statement \
                    and original not in self._own_lines else new[0].leading_lines
                lines = _merged_lines(orphaned, own)
                new = [new[0].with_changes(leading_lines=lines),
                       *(s.with_changes(leading_lines=()) if s is statement else s
                         for s in new[1:])]
                orphaned = ()
            body.extend(new)
        return body

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock,
                            updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        body = self._splice(original_node.body, updated_node.body)
        return updated_node if body is None else updated_node.with_changes(body=body)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        body = self._splice(original_node.body, updated_node.body)
        return updated_node if body is None else updated_node.with_changes(body=body)


def _merged_lines(orphaned: Sequence[cst.EmptyLine],
                  own: Sequence[cst.EmptyLine]) -> list[cst.EmptyLine]:
    """A dropped statement's comments, then the blank lines of whichever had some."""
    comments = [line for line in orphaned if line.comment is not None]
    blanks = [line for line in orphaned if line.comment is None]
    return [*comments, *(own if own else blanks)]


def parse_statements(source: str) -> list[cst.BaseStatement]:
    return list(cst.parse_module(source).body)

