"""Lines a rewrite made too long, split the way ruff's formatter and black split them.

A rewrite that adds an argument (``headers=trace_headers``) or wraps a call can push a line
past the repo's configured line length (``line-length`` of its ruff or black settings), and
its linter (E501) or formatter check then fails on code the repo's authors never touched.
So after the rewrite, each line it changed that is too long and holds a whole statement is
split at its last bracket pair, as the formatters' right-hand split does::

    async with session.get(url, timeout=timeout, headers=trace_headers) as response:

    async with session.get(
        url, timeout=timeout, headers=trace_headers
    ) as response:

and, when the contents still do not fit, one element per line with a trailing comma. Only
whitespace inside brackets changes, so the code means the same; a line that cannot be split
that way (no brackets, a continuation line, a tab indent, a comprehension or lambda that
would need splitting) is left as it is.
"""

from __future__ import annotations

import difflib
import io
import tokenize

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")", "]", "}"}
_INDENT = "    "
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)


def _changed_rows(before: str, after: str) -> set[int]:
    """0-based indexes of the lines of ``after`` that are not lines of ``before``."""
    old, new = before.splitlines(), after.splitlines()
    rows: set[int] = set()
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, _, _, start, end in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            rows.update(range(start, end))
    return rows


def _statements(source: str) -> list[list[tokenize.TokenInfo]] | None:
    """The tokens of each statement (comments on lines of their own left out)."""
    statements: list[list[tokenize.TokenInfo]] = []
    current: list[tokenize.TokenInfo] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in (tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
                              tokenize.ENCODING, tokenize.ENDMARKER) and not current:
                continue
            if token.type == tokenize.NEWLINE:
                if current:
                    statements.append(current)
                current = []
            elif token.type == tokenize.NL and all(
                    t.type == tokenize.COMMENT for t in current):
                current = []  # a comment on a line of its own
            else:
                current.append(token)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    return statements


def _on_one_row(tokens: list[tokenize.TokenInfo]) -> bool:
    return len({t.start[0] for t in tokens} | {t.end[0] for t in tokens}) == 1


def _split_elements(line: str, statement: list[tokenize.TokenInfo], row: int,
                    limit: int) -> list[str] | None:
    """A line holding all the elements of a bracket opened at the end of the line before and
    closed at the start of the line after: one element per line, with a trailing comma."""
    statement = [t for t in statement if t.type != tokenize.NL]
    on_row = [i for i, t in enumerate(statement) if t.start[0] == row + 1
              and t.type not in (tokenize.NL, tokenize.COMMENT)]
    if not on_row:
        return None
    first, last = on_row[0], on_row[-1]
    if first == 0 or last + 1 >= len(statement):
        return None
    opened, closed = statement[first - 1], statement[last + 1]
    if not (opened.type == tokenize.OP and opened.string in _OPEN and opened.end[0] == row
            and closed.type == tokenize.OP and closed.string == _OPEN[opened.string]
            and closed.start[0] == row + 2):
        return None
    body = statement[first:last + 1]
    if any(t.end[0] != row + 1 for t in body) or any(
            t.type == tokenize.COMMENT for t in statement if t.start[0] == row + 1):
        return None
    depth = 0
    for token in body:  # the brackets on the row close on it: all of it is inside ``opened``
        if token.type == tokenize.OP and token.string in _OPEN:
            depth += 1
        elif token.type == tokenize.OP and token.string in _CLOSE:
            depth -= 1
            if depth < 0:
                return None
    elements = _elements(body, line)
    if not elements or len(elements) < 2:
        return None
    indent = line[:len(line) - len(line.lstrip())]
    if "\t" in indent:
        return None
    return [f"{indent}{element}," for element in elements]


def _pairs(tokens: list[tokenize.TokenInfo]) -> list[tuple[int, int]]:
    """(open, close) token indexes of the brackets at the statement's top level."""
    pairs: list[tuple[int, int]] = []
    stack: list[int] = []
    in_fstring = 0
    for index, token in enumerate(tokens):
        if token.type == _FSTRING_START:
            in_fstring += 1
        elif token.type == _FSTRING_END:
            in_fstring -= 1
        elif token.type == tokenize.OP and not in_fstring:
            if token.string in _OPEN:
                stack.append(index)
            elif token.string in _CLOSE and stack:
                opened = stack.pop()
                if not stack:
                    pairs.append((opened, index))
    return pairs if not stack else []


def _elements(tokens: list[tokenize.TokenInfo], line: str) -> list[str] | None:
    """The body's top-level elements (its text split at commas); None when it holds a
    ``lambda`` or comprehension, whose commas or ``for`` are not element separators."""
    parts: list[str] = []
    depth = 0
    start = tokens[0].start[1]
    for token in tokens:
        if token.type == tokenize.OP and token.string in _OPEN:
            depth += 1
        elif token.type == tokenize.OP and token.string in _CLOSE:
            depth -= 1
        elif depth == 0 and token.type == tokenize.NAME and token.string in ("lambda", "for"):
            return None
        elif depth == 0 and token.type == tokenize.OP and token.string == ",":
            parts.append(line[start:token.start[1]].strip())
            start = token.end[1]
    rest = line[start:tokens[-1].end[1]].strip()
    if rest:
        parts.append(rest)
    return parts


def _split(line: str, tokens: list[tokenize.TokenInfo], limit: int) -> list[str] | None:
    indent = line[:len(line) - len(line.lstrip())]
    if "\t" in indent:
        return None
    inner = indent + _INDENT
    for opened, closed in reversed(_pairs(tokens)):
        body = tokens[opened + 1:closed]
        if not body:
            continue
        head = line[:tokens[opened].end[1]].rstrip()
        tail = line[tokens[closed].start[1]:].rstrip()
        if len(head) > limit or len(indent + tail) > limit:
            continue
        text = line[tokens[opened].end[1]:tokens[closed].start[1]].strip()
        magic = body[-1].type == tokenize.OP and body[-1].string == ","
        elements = _elements(body, line)
        if not magic and (len(inner + text) <= limit or not elements or len(elements) < 2):
            if elements is None and len(inner + text) > limit:
                return None
            return [head, inner + text, indent + tail]
        if not elements:
            return None
        return [head, *(f"{inner}{element}," for element in elements), indent + tail]
    return None


def fit_changed_lines(before: str, after: str, limit: int) -> str:
    """``after`` with each line it changed from ``before`` that is longer than ``limit``
    split at its brackets, as ruff's formatter or black would: a line holding a bracket's
    elements one element per line, any other at its last bracket pair; lines a split leaves
    too long are split again."""
    for _ in range(4):
        fitted = _fit_once(before, after, limit)
        if fitted == after:
            break
        after = fitted
    return after


def _fit_once(before: str, after: str, limit: int) -> str:
    rows = _changed_rows(before, after)
    lines = after.splitlines(keepends=True)
    long_rows = [row for row in rows if len(lines[row].rstrip("\r\n")) > limit]
    if not long_rows:
        return after
    statements = _statements(after)
    if statements is None:
        return after
    by_row: dict[int, list[tokenize.TokenInfo]] = {}
    for tokens in statements:
        for row in range(tokens[0].start[0] - 1, tokens[-1].end[0]):
            by_row.setdefault(row, tokens)
    for row in sorted(long_rows, reverse=True):
        statement = by_row.get(row)
        if statement is None:
            continue
        text = lines[row]
        ending = text[len(text.rstrip("\r\n")):]
        line = text.rstrip("\r\n")
        on_row = [t for t in statement if t.type != tokenize.NL
                  and row + 1 in (t.start[0], t.end[0])]
        if not on_row or any(t.start[0] != t.end[0] for t in on_row):
            continue  # a string over several lines: not ours to split
        split = None
        if not _on_one_row(statement):
            split = _split_elements(line, statement, row, limit)
        if split is None:
            split = _split(line, on_row, limit)
        if split is not None:
            lines[row:row + 1] = [part + (ending or "\n") for part in split[:-1]] + [
                split[-1] + ending]
    return "".join(lines)
