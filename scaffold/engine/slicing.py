"""Slicing: LibCST sees only the definitions a file's rules could act on.

A file that passes the gates usually holds a site or two among dozens of functions and
classes, and LibCST's parse, scope analysis, positions and code generation each cost in
proportion to the code they are given. So before LibCST parses a file, every top-level
function or class, and every method of a class, that names nothing the active rules look for
is replaced by a one-line stub binding the same name in the same scope (``def name(): ...``).
The codemods run on that smaller module; afterwards each stub line is replaced by the bytes it
stood for, and reported lines are mapped back to the file's own.

What a definition must name to stay (matched as whole identifiers):

- a *carrier*: the active rules' syntax-gate names (their last parts) and words, and every
  local name an import binds to one of those names (``from threading import Thread as T``);
- a *site* word (``SLICE_WORDS``): it keeps the definition naming it but carries nothing;
- then, until nothing more is added, carriers grow with what staying code binds where other
  code can see it: the names a module- or class-level statement naming a carrier assigns, the
  name of a class kept whole, the attributes of ``self`` a kept method may put a carrier's
  value into (``_Flow``), and the name of a class holding one.

A class whose header (its bases, keywords, decorators) names a word stays whole; any other
class that stays keeps its header and its non-definition statements, and its methods are
decided one by one. Module-level statements other than definitions always stay.

Why this is exact for the rules that opt in (``SLICE_WORDS`` is not None): a stub binds the
same name in the same scope, so scope analysis and qualified names of the code that stays see
the bindings they would see in the whole file (a ``global`` binding that matters names a word
itself); those rules act only on code that names a word, and follow values only the way
``_Flow`` does; a name only left-out code uses still counts as taken (``Slice.uses_name``).
``tests/engine/test_slicing.py`` runs every codemod fixture and every third-party file of the
environment that reaches LibCST both ways and compares every byte, finding and line. Whenever
a stub does not come back intact, the file is processed whole instead.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_WORD = re.compile(rb"[A-Za-z_\x80-\xff][\w\x80-\xff]*")
_TEXT_WORD = re.compile(r"\w+")
MARK = b"scaffold-slice"


@dataclass(frozen=True)
class Slice:
    """The module LibCST parses instead of the file, and how to get back to the file."""

    source: bytes
    stubs: tuple[tuple[bytes, bytes], ...]  # (stub line, the file's bytes it stands for)
    lines: tuple[int, ...]  # the file's line for each line of ``source`` (index = line - 1)
    # the stubbed-out definitions and their words (``uses_name``)
    left_out: tuple[tuple[ast.AST, frozenset[bytes]], ...] = field(default=(), compare=False)

    def uses_name(self, name: str) -> bool:
        """Whether left-out code holds ``name`` as a plain name (not after a dot): a codemod
        choosing the local name of an import must avoid it as if it saw the whole file."""
        word = name.encode()
        return any(word in words and name in _plain_names(node)
                   for node, words in self.left_out)

    def original_line(self, line: int) -> int:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else line

    def restore(self, code: bytes) -> bytes | None:
        """``code`` (generated from the sliced module) with every stub put back; None when a
        stub is missing, out of order or repeated (a rule touched it)."""
        parts: list[bytes] = []
        rest = code
        for stub, original in self.stubs:
            before, found, rest = rest.partition(stub)
            if not found or MARK in before:
                return None
            parts += [before, original]
        if MARK in rest:
            return None
        parts.append(rest)
        return b"".join(parts)


@dataclass
class _Flow:
    """What a kept method may put into ``self``'s attributes, in words.

    A value reaches a name or an attribute the way the rules that slice follow it: from a
    call naming a carrier (``ThreadPoolExecutor()``, ``with ThreadPoolExecutor() as pool``),
    as a copy of a name holding one (``self.pool = pool`` where ``pool: Executor``), or with an
    annotation naming one (``self.deps: Deps = ...``). A rule that follows values further
    (through other expressions, returns, containers) must not declare ``SLICE_WORDS``.
    """

    params: list[tuple[bytes, frozenset[bytes]]]  # name, the words of its annotation
    assigned: list[tuple[frozenset[bytes], frozenset[bytes]]]  # local names bound, value words
    stores: list[tuple[frozenset[bytes], frozenset[bytes]]]  # attributes, value/annotation words

    @classmethod
    def of(cls, node: ast.FunctionDef | ast.AsyncFunctionDef) -> _Flow:
        flow = cls([], [], [])
        positional = [*node.args.posonlyargs, *node.args.args]
        owner = positional[0].arg if positional else None  # self
        for child in ast.walk(node):
            if isinstance(child, ast.arg):
                flow.params.append((child.arg.encode(), _words(child.annotation)))
                continue
            if isinstance(child, ast.Assign):
                targets, words = child.targets, _carried(child.value)
            elif isinstance(child, ast.AnnAssign):
                targets, words = [child.target], _carried(child.value) | _words(child.annotation)
            elif isinstance(child, ast.withitem) and child.optional_vars is not None:
                targets, words = [child.optional_vars], _carried(child.context_expr)
            else:
                continue
            names = frozenset(target.id.encode() for target in targets
                              if isinstance(target, ast.Name))
            attributes = frozenset(attribute for target in targets
                                   if isinstance(target, ast.Attribute)
                                   for attribute in _on(target, owner))
            if names:
                flow.assigned.append((names, words))
            if attributes:
                flow.stores.append((attributes, words))
        return flow

    def stored(self, carriers: set[bytes]) -> set[bytes]:
        """The attributes it assigns something a carrier (or a local holding one) may hold."""
        holders = set(carriers) | {name for name, words in self.params
                                   if not words.isdisjoint(carriers)}
        grown = True
        while grown:
            grown = False
            for names, words in self.assigned:
                if not names <= holders and not words.isdisjoint(holders):
                    holders |= names
                    grown = True
        return {attribute for attributes, words in self.stores
                if not words.isdisjoint(holders) for attribute in attributes}


@dataclass
class _Definition:
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    first: int  # 0-based index of its first line (decorators included)
    end: int  # 0-based index past its last line
    words: frozenset[bytes]
    header: frozenset[bytes] = frozenset()  # a class: words before its body
    members: tuple[_Definition, ...] = ()  # a class: its methods and nested classes
    statements: tuple[tuple[ast.stmt, frozenset[bytes]], ...] = ()  # a class: the rest
    kept: bool = False
    whole: bool = False
    flow: _Flow | None = None  # a kept method's, once asked

    @property
    def is_class(self) -> bool:
        return isinstance(self.node, ast.ClassDef)


def slice_module(source: bytes, tree: ast.Module, words: Iterable[str],
                 sites: Iterable[str] = (), *, calls: bool = False) -> Slice | None:
    """``source`` with the definitions that name none of ``words`` (or of ``sites``, words
    that carry nothing: see ``_decide``) stubbed out; None when nothing would be (or could
    safely be) left out. With ``calls`` (a rule reading the functions a site's function
    calls, or its callers), kept code also keeps the definitions it names, and the ones
    naming it (``_follow_calls``)."""
    if MARK in source or not _utf8_words(source):
        return None
    lines = source.splitlines(keepends=True)
    if tree.body and tree.body[-1].end_lineno and tree.body[-1].end_lineno > len(lines):
        return None  # the stdlib counts lines differently (a form feed, say): do not guess
    definitions = _definitions(tree.body, lines)
    if not definitions:
        return None
    site_words = {word.encode() for word in sites}
    _decide(tree, definitions, lines, {word.encode() for word in words} - site_words,
            site_words, calls=calls)
    stubbed = [
        definition
        for top in definitions
        for definition in ((top,) if not top.kept or top.whole else top.members)
        if not definition.kept and definition.first > 0  # line 1 may hold a BOM or a cookie
    ]
    if not stubbed:
        return None
    return _build(lines, sorted(stubbed, key=lambda definition: definition.first))


def _utf8_words(source: bytes) -> bool:
    """Whether identifiers are spelled in UTF-8 as the stdlib names them (``words`` are
    encoded so to match them): Python reads an identifier NFKC-normalized (``ﬁle`` is
    ``file``), so one that normalization would change is not matched by its bytes. (Any
    word that could be an identifier counts, in a string or comment too.)"""
    if source.isascii():
        return True
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
        text = source.decode(encoding)
    except (SyntaxError, UnicodeError, LookupError):
        return False
    return encoding in ("utf-8", "utf-8-sig") and all(
        unicodedata.is_normalized("NFKC", word) for word in _TEXT_WORD.findall(text)
        if not word.isascii() and word.isidentifier())


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", ())
    return min([node.lineno, *(decorator.lineno for decorator in decorators)]) - 1


def _binds(statement: ast.stmt) -> bool:
    """Whether a statement (not a definition) may bind a name: not a docstring, say."""
    if isinstance(statement, ast.Expr):
        return not isinstance(statement.value, ast.Constant)
    return not isinstance(statement, (*_DEFINITIONS, ast.Pass, ast.Import, ast.ImportFrom))


def _statement_words(node: ast.stmt, lines: list[bytes]) -> frozenset[bytes]:
    return frozenset(_WORD.findall(b"".join(lines[_first_line(node):node.end_lineno])))


def _definitions(body: list[ast.stmt], lines: list[bytes]) -> list[_Definition]:
    found = []
    for node in body:
        if not isinstance(node, _DEFINITIONS) or node.end_lineno is None:
            continue
        first, end = _first_line(node), node.end_lineno
        text = b"".join(lines[first:end])
        words = frozenset(_WORD.findall(text))
        definition = _Definition(node, first, end, words)
        if isinstance(node, ast.ClassDef) and node.body[0].lineno > node.lineno:
            body_first = _first_line(node.body[0])
            definition.header = frozenset(_WORD.findall(b"".join(lines[first:body_first])))
            definition.members = tuple(_definitions(node.body, lines))
            definition.statements = tuple(
                (statement, _statement_words(statement, lines)) for statement in node.body
                if _binds(statement))
        found.append(definition)
    return found


def _decide(tree: ast.Module, definitions: list[_Definition], lines: list[bytes],
            carriers: set[bytes], sites: set[bytes], *, calls: bool = False) -> None:
    """Mark what stays: a definition naming a carrier or a site word. Both grow with what
    staying code binds, to a fixed point:

    - a module- or class-level statement naming a carrier: the names it assigns are carriers;
      an assignment of a value naming a site word: they are site words (``otel_detach =
      context.detach``);
    - a class kept whole (``class Worker(Thread)``): its name (``Worker(target=...)``);
    - a kept method: the attributes of ``self`` it may put a carrier's value into
      (``_Flow``), and then its class's name (``deps: Deps`` then ``deps.pool``), as for a
      class-level statement naming a carrier.

    Site words (``Thread``) keep the definition naming them but carry nothing: what such a
    call returns is not what the rule follows.
    """
    statements = [(node, _statement_words(node, lines)) for node in tree.body
                  if _binds(node)]
    counted: dict[int, bool] = {}  # statements whose names count already: as carriers?

    def count(node: ast.stmt, words: frozenset[bytes]) -> bool:
        """Add what a statement binds; whether it names a carrier."""
        carries = not words.isdisjoint(carriers)
        state = counted.get(id(node))
        if carries and state is not True:
            counted[id(node)] = True
            carriers.update(_stored(node))
        elif state is None and isinstance(node, (ast.Assign, ast.AnnAssign)) \
                and not _words(node.value).isdisjoint(sites):
            counted[id(node)] = False  # an alias of a site: ``otel_detach = context.detach``
            sites.update(_stored(node))
        return carries

    while True:
        before = len(carriers) + len(sites)
        for node, words in statements:
            count(node, words)
        for top in definitions:
            _keep_if_named(top, carriers, sites)
            if not top.is_class or not top.kept or top.whole:
                continue
            carries = False
            for node, words in top.statements:
                carries = count(node, words) or carries
            for member in top.members:
                _keep_if_named(member, carriers, sites)
                if member.kept and not isinstance(member.node, ast.ClassDef):
                    member.flow = member.flow or _Flow.of(member.node)
                    stored = member.flow.stored(carriers)
                    carries = carries or bool(stored)
                    carriers.update(stored)
            if carries:
                carriers.add(top.node.name.encode())
        if calls:
            _follow_calls(definitions, sites)
        if len(carriers) + len(sites) == before:
            return


def _follow_calls(definitions: list[_Definition], sites: set[bytes]) -> None:
    """Calls in both directions, for rules that read across them: the name of every kept
    definition becomes a site word (what names it, a caller, stays), and so does every
    definition's name a kept one holds (a callee, ``build_headers()``, stays)."""
    named = {definition.node.name.encode() for top in definitions
             for definition in (top, *top.members)}
    for top in definitions:
        for definition in (top, *top.members):
            if definition.kept:
                sites.add(definition.node.name.encode())
                sites.update(named & definition.words)


def _keep_if_named(definition: _Definition, carriers: set[bytes], sites: set[bytes]) -> None:
    if definition.kept or (definition.words.isdisjoint(carriers)
                           and definition.words.isdisjoint(sites)):
        return
    definition.kept = True
    definition.whole = not definition.members or not (
        definition.header.isdisjoint(carriers) and definition.header.isdisjoint(sites))
    if definition.whole and definition.is_class:
        carriers.add(definition.node.name.encode())  # Worker(target=...), class B(Worker)


def _on(target: ast.Attribute, owner: str | None) -> list[bytes]:
    """The attribute names of ``owner.a.b`` (an assignment target), or none for another root."""
    found = []
    node: ast.expr = target
    while isinstance(node, ast.Attribute):
        found.append(node.attr.encode())
        node = node.value
    return found if isinstance(node, ast.Name) and node.id == owner else []


def _carried(value: ast.expr | None) -> frozenset[bytes]:
    """The words a value can carry a carrier's value by (see ``_Flow``)."""
    if isinstance(value, ast.Call):
        return _words(value.func)
    return _words(value) if isinstance(value, (ast.Name, ast.Attribute)) else frozenset()


def _words(node: ast.AST | None) -> frozenset[bytes]:
    if node is None:
        return frozenset()
    return frozenset(
        (child.id if isinstance(child, ast.Name) else child.attr).encode()
        for child in ast.walk(node) if isinstance(child, (ast.Name, ast.Attribute)))


def _stored(node: ast.AST) -> set[bytes]:
    """The names a module- or class-level statement binds in its own scope (a definition
    nested in it binds its name; what its body binds is its own)."""
    found = set()
    pending = [node]
    while pending:
        child = pending.pop()
        if isinstance(child, _DEFINITIONS):
            found.add(child.name.encode())
            pending.extend(child.decorator_list)
            continue
        if isinstance(child, (ast.Lambda, ast.Import, ast.ImportFrom)):
            continue  # an import's alias of a carrier is one already (import_aliases)
        if isinstance(child, ast.Name) and not isinstance(child.ctx, ast.Load):
            found.add(child.id.encode())
        pending.extend(ast.iter_child_nodes(child))
    return found


def _build(lines: list[bytes], stubbed: list[_Definition]) -> Slice:
    out: list[bytes] = []
    origin: list[int] = []  # the file's line for each line written
    stubs: list[tuple[bytes, bytes]] = []
    at = 0
    for number, definition in enumerate(stubbed):
        first, end, node = definition.first, definition.end, definition.node
        out += lines[at:first]
        origin += range(at + 1, first + 1)
        head = lines[first]
        indent = head[:len(head) - len(head.lstrip(b" \t"))]
        newline = b"\r\n" if head.endswith(b"\r\n") else b"\r" if head.endswith(b"\r") else b"\n"
        keyword = {ast.ClassDef: b"class", ast.AsyncFunctionDef: b"async def"}.get(
            type(node), b"def")
        colon = b":" if keyword == b"class" else b"():"
        name = node.name.encode()
        stub = indent + keyword + b" " + name + colon + b" ...  # " + MARK + b" %d" % number \
            + newline
        stubs.append((stub, b"".join(lines[first:end])))
        out.append(stub)
        origin.append(first + 1)
        at = end
    out += lines[at:]
    origin += range(at + 1, len(lines) + 1)
    left_out = tuple((definition.node, definition.words) for definition in stubbed)
    return Slice(b"".join(out), tuple(stubs), tuple(origin), left_out)


def _plain_names(tree: ast.AST) -> set[str]:
    """Every identifier LibCST would hold in a ``Name`` node in ``tree``, except the name
    after a dot: variables, parameters, definitions, keywords, import and ``as`` names."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
        elif isinstance(node, ast.keyword) and node.arg:
            found.add(node.arg)
        elif isinstance(node, ast.alias):
            found.add(node.name.split(".")[0])
            if node.asname:
                found.add(node.asname)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            found.update(node.names)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            found.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            found.add(node.rest)
        elif isinstance(node, ast.MatchClass):
            found.update(node.kwd_attrs)
    return found


def import_aliases(imports: Mapping[str, Iterable[str]], names: Iterable[str]) -> set[str]:
    """The local names an import binds to one of ``names`` itself (``from threading import
    Thread as T``: ``T``), from ``SyntaxIndex.imports``. A name reached through a module
    (``cf.ThreadPoolExecutor``) spells its last part out, so it needs no alias."""
    wanted = set(names)
    return {local for local, targets in imports.items() if not wanted.isdisjoint(targets)}
