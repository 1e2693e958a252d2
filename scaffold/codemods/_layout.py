"""Keeping rewritten code within the repo's line length (``Settings.line_length``).

Not a codemod (the leading underscore keeps it out of the registry). A codemod that indents
code one level deeper (a ``with`` around a loop body) or makes a call longer asks ``fit`` to
lay out again what would now pass the limit and did not before:

- a full-line comment is re-wrapped over several comment lines (never a pragma such as
  ``# type: ignore``, ``# noqa``, ``# fmt: off``);
- a trailing comment that pushes its line over moves onto its own line above the statement;
- a one-line statement ending in a call is split inside the call's parentheses, the way ruff
  and black format it: the arguments on one indented line, or one per line with a trailing
  comma when they do not fit on one.

Anything else (a long string, a line already split by hand) is left as it is. Only layout
changes: the code means exactly what it meant.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import libcst as cst

_PRAGMA = re.compile(r"#\s*(type:|noqa|pragma|fmt:|pylint:|mypy:|pyright:|isort:|ruff:|"
                     r"scaffold:|nosec|!)", re.IGNORECASE)


def _width(text: str) -> int:
    return len(text.expandtabs(8))


def fit(statements: Sequence[cst.BaseStatement], column: int, module: cst.Module,
        limit: int | None, *, grown: int | None) -> list[cst.BaseStatement]:
    """``statements`` (indented at ``column``) with the lines that growing by ``grown``
    columns pushed over ``limit`` laid out again (``grown=None``: every line over it)."""
    if limit is None:
        return list(statements)
    fitter = _Fitter(column, module, limit, grown)
    return [statement.visit(fitter) for statement in statements]  # type: ignore[misc]


class _Fitter(cst.CSTTransformer):
    def __init__(self, column: int, module: cst.Module, limit: int, grown: int | None) -> None:
        super().__init__()
        self.module, self.limit, self.grown = module, limit, grown
        self.columns = [column]
        self.elifs: set[cst.If] = set()

    def visit_If(self, node: cst.If) -> None:
        if isinstance(node.orelse, cst.If):
            self.elifs.add(node.orelse)

    def _over(self, width: int) -> bool:
        if self.grown is None:
            return width > self.limit
        return width > self.limit >= width - self.grown

    # -- where we are --

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        indent = node.indent if node.indent is not None else self.module.default_indent
        self.columns.append(self.columns[-1] + _width(indent))

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock,
                            updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        self.columns.pop()
        return updated_node

    # -- comments on their own line --

    def leave_EmptyLine(self, original_node: cst.EmptyLine, updated_node: cst.EmptyLine
                        ) -> cst.EmptyLine | cst.FlattenSentinel[cst.EmptyLine]:
        comment = updated_node.comment
        if comment is None:
            return updated_node
        start = (self.columns[-1] if updated_node.indent else 0) + _width(
            updated_node.whitespace.value)
        if not self._over(start + _width(comment.value)) or _PRAGMA.match(comment.value):
            return updated_node
        lines = _rewrap(comment.value, self.limit - start)
        if lines is None:
            return updated_node
        return cst.FlattenSentinel([updated_node.with_changes(comment=cst.Comment(line))
                                    for line in lines])

    # -- statements on one line --

    def leave_SimpleStatementLine(self, original_node: cst.SimpleStatementLine,
                                  updated_node: cst.SimpleStatementLine) -> cst.BaseStatement:
        column = self.columns[-1]
        bare = updated_node.with_changes(leading_lines=())
        text = self.module.code_for_node(bare).rstrip("\n")
        if "\n" in text:
            return self._split_strings(updated_node, text)
        if not self._over(column + _width(text)):
            return updated_node
        comment = updated_node.trailing_whitespace.comment
        if comment is not None and not _PRAGMA.match(comment.value):
            moved = self._comment_above(updated_node, comment)
            code = self.module.code_for_node(moved.with_changes(leading_lines=())).rstrip("\n")
            if column + _width(code) <= self.limit:
                return moved
            updated_node, text = moved, code
        call = _final_call(updated_node)
        if call is None:
            return updated_node
        split = _split(updated_node, call, column, self.module, self.limit)
        return split if split is not None else updated_node

    def _split_strings(self, statement: cst.SimpleStatementLine,
                       text: str) -> cst.SimpleStatementLine:
        """A statement split over lines by hand: a continuation line that is one string (an
        argument, a part of an implicit concatenation) and now passes the limit is split into
        two strings at a space, the second on the next line."""
        column = self.columns[-1]
        for line in text.split("\n")[1:]:
            if not self._over(column + _width(line)):
                continue
            margin = line[:len(line) - len(line.lstrip())]
            body = line.strip().rstrip(",)").rstrip()
            strings = _Strings()
            statement.visit(strings)
            target = next((node for node in strings.found
                           if self.module.code_for_node(node) == body), None)
            if target is None:
                continue
            halves = _halves(target, self.limit - column - _width(margin))
            if halves is None:
                continue
            statement = statement.visit(_Joiner(target, halves, margin))  # type: ignore[assignment]
        return statement

    def leave_If(self, original_node: cst.If, updated_node: cst.If) -> cst.If:
        return self._header(updated_node)

    def leave_While(self, original_node: cst.While, updated_node: cst.While) -> cst.While:
        return self._header(updated_node)

    def leave_For(self, original_node: cst.For, updated_node: cst.For) -> cst.For:
        return self._header(updated_node)

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.With:
        return self._header(updated_node)

    def leave_Try(self, original_node: cst.Try, updated_node: cst.Try) -> cst.Try:
        return self._header(updated_node)

    def _header(self, node):  # type: ignore[no-untyped-def]
        """A compound statement whose ``:`` line is pushed over by its trailing comment: the
        comment goes on its own line above the statement."""
        body = node.body
        if (not isinstance(body, cst.IndentedBlock) or body.header.comment is None
                or node in self.elifs):
            return node
        comment = body.header.comment
        first = self.module.code_for_node(node.with_changes(leading_lines=())).split("\n", 1)[0]
        if not first.rstrip().endswith(comment.value) or _PRAGMA.match(comment.value) or \
                not self._over(self.columns[-1] + _width(first)):
            return node
        header = body.header.with_changes(whitespace=cst.SimpleWhitespace(""), comment=None)
        return self._comment_above(node.with_changes(body=body.with_changes(header=header)),
                                   comment)

    def _comment_above(self, node, comment: cst.Comment):  # type: ignore[no-untyped-def]
        column = self.columns[-1]
        lines = _rewrap(comment.value, self.limit - column) or [comment.value]
        above = [cst.EmptyLine(indent=True, whitespace=cst.SimpleWhitespace(""),
                               comment=cst.Comment(line)) for line in lines]
        if isinstance(node, cst.SimpleStatementLine):
            node = node.with_changes(trailing_whitespace=cst.TrailingWhitespace())
        return node.with_changes(leading_lines=[*node.leading_lines, *above])


def _rewrap(comment: str, width: int) -> list[str] | None:
    """A ``# ...`` comment as lines of at most ``width`` columns (None: a word is too long)."""
    words = comment[1:].strip().split()
    if not words:
        return None
    lines: list[str] = []
    current = "#"
    for word in words:
        candidate = f"{current} {word}"
        if _width(candidate) <= width:
            current = candidate
        elif current == "#":
            return None
        else:
            lines.append(current)
            current = f"# {word}"
            if _width(current) > width:
                return None
    lines.append(current)
    return lines if len(lines) > 1 else None


def _final_call(statement: cst.SimpleStatementLine) -> cst.Call | None:
    """The call a one-statement line ends in: ``f(...)``, ``x = await f(...)``, ``return f()``."""
    if len(statement.body) != 1:
        return None
    small = statement.body[0]
    value = getattr(small, "value", None)
    if isinstance(small, cst.Expr):
        value = small.value
    if isinstance(value, cst.Await):
        value = value.expression
    if isinstance(value, cst.Call) and value.args and not any(
            isinstance(arg.value, (cst.Lambda,)) for arg in value.args):
        return value
    return None


def _split(statement: cst.SimpleStatementLine, call: cst.Call, column: int,
           module: cst.Module, limit: int) -> cst.SimpleStatementLine | None:
    """The statement with ``call``'s arguments on their own lines (None: still too long)."""
    new_call = split_call(call, column, module, limit)
    if new_call is None:
        return None
    result = statement.deep_replace(call, new_call)
    assert isinstance(result, cst.SimpleStatementLine)
    first = module.code_for_node(result.with_changes(leading_lines=())).split("\n", 1)[0]
    return result if column + _width(first) <= limit else None


def split_call(call: cst.Call, column: int, module: cst.Module, limit: int) -> cst.Call | None:
    """``call`` (on a line indented at ``column``) with its arguments on the next line, or one
    per line with a trailing comma when they do not fit on one (None: one is too long)."""
    unit = module.default_indent
    inner = column + _width(unit)
    args = [arg.with_changes(comma=cst.MaybeSentinel.DEFAULT,
                             whitespace_after_arg=cst.SimpleWhitespace("")) for arg in call.args]
    if not args:
        return None
    joined = ", ".join(module.code_for_node(arg) for arg in args)
    newline = cst.ParenthesizedWhitespace(first_line=cst.TrailingWhitespace(), empty_lines=[],
                                          indent=True, last_line=cst.SimpleWhitespace(unit))
    closing = cst.ParenthesizedWhitespace(first_line=cst.TrailingWhitespace(), empty_lines=[],
                                          indent=True, last_line=cst.SimpleWhitespace(""))
    if inner + _width(joined) <= limit:
        comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        laid = [arg.with_changes(comma=comma) for arg in args[:-1]]
        laid.append(args[-1].with_changes(whitespace_after_arg=closing))
    else:
        if any(inner + _width(module.code_for_node(arg)) + 1 > limit for arg in args):
            return None
        comma = cst.Comma(whitespace_after=newline)
        laid = [arg.with_changes(comma=comma) for arg in args[:-1]]
        laid.append(args[-1].with_changes(comma=cst.Comma(whitespace_after=closing)))
    return call.with_changes(whitespace_before_args=newline, args=laid)


class _Strings(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: list[cst.SimpleString | cst.FormattedString] = []

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        self.found.append(node)

    def visit_FormattedString(self, node: cst.FormattedString) -> bool:
        self.found.append(node)
        return False


def _halves(node: cst.SimpleString | cst.FormattedString, width: int
            ) -> tuple[cst.SimpleString | cst.FormattedString, ...] | None:
    """The string as two adjacent strings with the same value, the first at most ``width``
    columns, split after a space of its literal text (None: no such space)."""
    if isinstance(node, cst.SimpleString):
        prefix, quote = node.prefix, node.quote
        if len(quote) == 3:
            return None
        inner = node.value[len(prefix) + 1:-1]
        cut = _space(inner, width - len(prefix) - 2)
        if cut is None:
            return None
        return (cst.SimpleString(f"{prefix}{quote}{inner[:cut]}{quote}"),
                cst.SimpleString(f"{prefix}{quote}{inner[cut:]}{quote}"))
    if len(node.end) == 3:
        return None
    used = _width(node.start)
    for index, part in enumerate(node.parts):
        if isinstance(part, cst.FormattedStringText):
            cut = _space(part.value, width - used - len(node.end))
            if cut is not None and cut > 0:
                left = [*node.parts[:index], cst.FormattedStringText(part.value[:cut])]
                right = [cst.FormattedStringText(part.value[cut:]), *node.parts[index + 1:]]
                return _fstring(node, left), _fstring(node, right)
            used += _width(part.value)
        else:
            used += len(cst.Module(body=[]).code_for_node(part))
        if used > width:
            return None
    return None


def _space(text: str, width: int) -> int | None:
    """The index just after the last space of ``text`` within ``width`` (not escaped)."""
    cut = text.rfind(" ", 0, max(width, 0))
    while cut > 0 and text[cut - 1] == "\\":
        cut = text.rfind(" ", 0, cut)
    return cut + 1 if cut > 0 else None


def _fstring(node: cst.FormattedString, parts: list) -> cst.SimpleString | cst.FormattedString:
    """An f-string of ``parts``; a plain string when no placeholder is left (no F541)."""
    if any(isinstance(part, cst.FormattedStringExpression) for part in parts):
        return node.with_changes(parts=parts)
    text = "".join(part.value for part in parts).replace("{{", "{").replace("}}", "}")
    prefix = node.start[:-1].replace("f", "").replace("F", "")
    return cst.SimpleString(f"{prefix}{node.start[-1]}{text}{node.end}")


class _Joiner(cst.CSTTransformer):
    """Replaces ``target`` by its halves, implicitly concatenated over two lines."""

    def __init__(self, target: cst.CSTNode, halves: tuple, margin: str) -> None:
        super().__init__()
        self.target, self.halves = target, halves
        self.between = cst.ParenthesizedWhitespace(
            first_line=cst.TrailingWhitespace(), empty_lines=[], indent=True,
            last_line=cst.SimpleWhitespace(margin))

    def _joined(self,
                right: cst.SimpleString | cst.FormattedString | cst.ConcatenatedString
                | None = None,
                whitespace: cst.BaseParenthesizableWhitespace | None = None
                ) -> cst.ConcatenatedString:
        if right is None:
            second = self.halves[1]
        else:  # a right part comes with the whitespace before it
            assert whitespace is not None
            second = cst.ConcatenatedString(
                left=self.halves[1], right=right, whitespace_between=whitespace)
        return cst.ConcatenatedString(left=self.halves[0], right=second,
                                      whitespace_between=self.between)

    def leave_ConcatenatedString(self, original_node: cst.ConcatenatedString,
                                 updated_node: cst.ConcatenatedString) -> cst.BaseExpression:
        if original_node.left is self.target:  # a left part cannot be a concatenation
            return self._joined(updated_node.right, updated_node.whitespace_between).with_changes(
                lpar=updated_node.lpar, rpar=updated_node.rpar)
        return updated_node

    def leave_SimpleString(self, original_node: cst.SimpleString,
                           updated_node: cst.SimpleString) -> cst.BaseExpression:
        return updated_node

    def on_leave(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        result = super().on_leave(original_node, updated_node)
        if original_node is self.target and not self._is_left(original_node):
            return self._joined()
        return result

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> None:
        self._lefts = getattr(self, "_lefts", set()) | {node.left}

    def _is_left(self, node: cst.CSTNode) -> bool:
        return node in getattr(self, "_lefts", set())
