"""Rendered test code held to the repository's line length (ruff's E501), as ruff would lay
it out: a line too long is split at its last bracket pair, one element per line; a plain
string literal too long is split into adjacent literals at spaces; a one-line docstring too
long becomes a wrapped multi-line one. Only whitespace and literal boundaries change: a split
that would change what the line means (its ``ast``) is not made.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize

INDENT = "    "
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")", "]", "}"}
_STRING_START = re.compile(r"[rRuUbBfF]{0,2}('''|\"\"\"|'|\")")
_DOCSTRING = re.compile(r'^(?P<indent> *)"""(?P<text>[^"\\]*(?:\\.[^"\\]*)*)"""$')


def fit(text: str, width: int) -> str:
    """``text`` (Python source) with every line longer than ``width`` split where it can be."""
    lines: list[str] = []
    prose = _in_multiline_strings(text)
    for number, line in enumerate(text.split("\n"), start=1):
        if len(line) <= width:
            lines.append(line)
        elif number in prose:
            indent = line[: len(line) - len(line.lstrip())]
            lines.extend(indent + part for part in textwrap.wrap(
                line.strip(), width=width - len(indent), break_long_words=False,
                break_on_hyphens=False))
        else:
            lines.extend(_fit_line(line, width))
    fitted = "\n".join(lines)
    try:
        if ast.dump(ast.parse(fitted)) != ast.dump(ast.parse(text)) and not _only_docstrings(
                text, fitted):
            return text
    except SyntaxError:
        return text
    return fitted


def _in_multiline_strings(text: str) -> set[int]:
    """Line numbers (1-based) that lie inside a string literal spanning several lines."""
    lines: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                lines.update(range(token.start[0], token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass
    return lines


def _only_docstrings(before: str, after: str) -> bool:
    """Whether two sources differ only in the whitespace of their docstrings."""
    def normalised(source: str) -> str:
        tree = ast.parse(source)
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                    body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                body[0].value.value = " ".join(body[0].value.value.split())
        return ast.dump(tree)
    return normalised(before) == normalised(after)


def _fit_line(line: str, width: int) -> list[str]:
    docstring = _DOCSTRING.match(line)
    if docstring is not None:
        indent = docstring.group("indent")
        wrapped = textwrap.wrap(docstring.group("text"), width=width - len(indent) - 3,
                                break_long_words=False, break_on_hyphens=False)
        return [f'{indent}"""{wrapped[0]}', *(f"{indent}{part}" for part in wrapped[1:]),
                f'{indent}"""']
    indent = line[: len(line) - len(line.lstrip())]
    if line.lstrip().startswith("#"):  # a comment: wrapped into comment lines
        text = line.lstrip().removeprefix("#").strip()
        wrapped = textwrap.wrap(text, width=width - len(indent) - 2, break_long_words=False,
                                break_on_hyphens=False)
        return [f"{indent}# {part}" for part in wrapped] if len(wrapped) > 1 else [line]
    code, comment = _code_and_comment(line)
    if comment and not comment.startswith(("# noqa", "# type:")) and len(code) <= width:
        return [*_fit_line(f"{indent}{comment}", width), code]  # the comment goes above
    return _split(line, width, 0)


def _split(line: str, width: int, depth: int) -> list[str]:
    if len(line) <= width or depth > 12:
        return [line]
    indent = line[: len(line) - len(line.lstrip())]
    code, comment = _code_and_comment(line)
    pair = _last_pair(code)
    if pair is None:
        return _split_string(line, width)
    start, end = pair
    head, inner, tail = code[: start + 1], code[start + 1: end], code[end:]
    elements = _elements(inner)
    if not elements:
        return [line]
    trailing = inner.rstrip().endswith(",")
    inner_indent = indent + INDENT
    if len(elements) == 1 and not trailing:
        body = [inner_indent + elements[0]]  # a lone element keeps its meaning (no tuple)
    else:
        body = [f"{inner_indent}{element}," for element in elements]
    first = head.rstrip() + (f"  {comment}" if comment else "")
    out = [first]
    for part in body:
        out.extend(_split(part, width, depth + 1))
    out.append(indent + tail.strip())
    return out


def _split_string(line: str, width: int) -> list[str]:
    """A line holding one plain string literal (and a comma after it) as adjacent literals."""
    indent = line[: len(line) - len(line.lstrip())]
    body = line.strip()
    comma = body.endswith(",")
    literal = body[:-1] if comma else body
    prefix = "f" if literal[:1] == "f" else ""
    literal = literal[len(prefix):]
    if len(literal) < 2 or literal[0] not in "'\"" or literal[-1] != literal[0] or \
            literal.startswith(("'''", '"""')):
        return [line]
    quote, content = literal[0], literal[1:-1]
    if quote in content.replace("\\" + quote, ""):
        return [line]
    room = max(width - len(indent) - 2 - len(prefix), 20)
    pieces: list[str] = []
    current = ""
    # each piece but the first starts with its space, so a long word ends a piece on its own
    for word in _words(content, braces=bool(prefix)):
        if current and len(current) + len(word) > room:
            pieces.append(current)
            current = ""
        current += word
    if current:
        pieces.append(current)
    if len(pieces) < 2:
        return [line]
    # an f-string piece without a placeholder is a plain literal (no f-string without one)
    out = [f"{indent}{prefix if '{' in piece or '}' in piece else ''}{quote}{piece}{quote}"
           for piece in pieces]
    if comma:
        out[-1] += ","
    return out


def _words(content: str, *, braces: bool) -> list[str]:
    """``content`` cut before each space that is not escaped (nor, in an f-string, inside a
    placeholder), so adjacent literals of the pieces mean the same string."""
    words: list[str] = []
    begin, depth = 0, 0
    for index, char in enumerate(content):
        if braces and char == "{":
            depth += 1
        elif braces and char == "}":
            depth = max(depth - 1, 0)
        elif char == " " and depth == 0 and index > begin and content[index - 1] != "\\":
            words.append(content[begin:index])
            begin = index
    words.append(content[begin:])
    return words


def _scan(code: str):
    """(index, character) of code outside string literals."""
    index = 0
    while index < len(code):
        char = code[index]
        match = _STRING_START.match(code, index)
        if match is not None and (index == 0 or not (code[index - 1].isalnum()
                                                      or code[index - 1] == "_")):
            quote = match.group(1)
            index = match.end()
            while index < len(code) and not code.startswith(quote, index):
                index += 2 if code[index] == "\\" else 1
            index += len(quote)
            continue
        yield index, char
        index += 1


def _code_and_comment(line: str) -> tuple[str, str]:
    for index, char in _scan(line):
        if char == "#":
            return line[:index].rstrip(), line[index:]
    return line.rstrip(), ""


def _last_pair(code: str) -> tuple[int, int] | None:
    """The last top-level bracket pair of a line (open, close), if its brackets balance."""
    stack: list[int] = []
    last: tuple[int, int] | None = None
    for index, char in _scan(code):
        if char in _OPEN:
            stack.append(index)
        elif char in _CLOSE:
            if not stack:
                return None
            start = stack.pop()
            if not stack and index - start > 1:
                last = (start, index)
    return last if not stack else None


def _elements(inner: str) -> list[str]:
    """The top-level comma-separated parts of a bracket's content, stripped; a comprehension
    or a lambda (whose commas do not separate elements) is one part."""
    top = [" "] * len(inner)
    depth = 0
    for index, char in _scan(inner):
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        elif depth == 0:
            top[index] = char
    if re.search(r"\b(for|lambda)\b", "".join(top)):
        return [inner.strip()] if inner.strip() else []
    parts: list[str] = []
    depth, begin = 0, 0
    for index, char in _scan(inner):
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(inner[begin:index].strip())
            begin = index + 1
    parts.append(inner[begin:].strip())
    return [part for part in parts if part]
