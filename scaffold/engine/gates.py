"""The syntax gate: what a file's stdlib ``ast`` mentions, checked before LibCST parses it.

A file passes the text prefilter when a rule's needles occur anywhere, comments and
docstrings included. LibCST then costs about ten times a stdlib parse, and its scope analysis
several times more, so a second gate asks the ``ast`` (a C parser) whether the code itself
names anything the rule could match. A rule declares that as a ``SyntaxGate``:

- ``names``: qualified names as an import would spell them (``threading.Thread``); a file
  passes if any Name/Attribute chain resolves to one through any import of the file, in any
  scope (``from threading import Thread as T`` then ``T``; ``import concurrent.futures as
  cf`` then ``cf.ThreadPoolExecutor``), string annotations included;
- ``words``: identifiers used in code: a name, an attribute, an imported name, a function,
  class, parameter or keyword-argument name (``run_in_executor``);
- ``strings``: string constants (``"__main__"``).

Any one hit lets the file through. Before the ``ast`` is built, ``may_admit`` asks the text
the same question cheaply: a name is only ever referenced with its last part spelled out (in
the chain itself, or in the import that binds it) and a word is spelled out, so a source
holding none of them cannot pass (strings may be escaped or split, so a gate with strings
always asks the ``ast``). The gate over-approximates LibCST's
``QualifiedNameProvider`` (which sees only the bindings visible at a node, and never follows
an assignment), so it never drops a file a rule that matches by qualified name could act on.
A file the ``ast`` cannot parse (newer syntax, bad encoding) passes every gate: LibCST decides.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

# a string constant worth parsing as a type annotation ("Optional[ThreadPoolExecutor]")
_ANNOTATION_LIKE = re.compile(r"\s*[A-Za-z_][\w.\[\], |]*\s*")
_MAX_ANNOTATION = 200


@dataclass(frozen=True)
class SyntaxGate:
    """What the code must mention for a rule to act on a file; any one hit suffices."""

    names: frozenset[str] = frozenset()
    words: frozenset[str] = frozenset()
    strings: frozenset[str] = frozenset()

    def __init__(self, *, names: Iterable[str] = (), words: Iterable[str] = (),
                 strings: Iterable[str] = ()) -> None:
        object.__setattr__(self, "names", frozenset(names))
        object.__setattr__(self, "words", frozenset(words))
        object.__setattr__(self, "strings", frozenset(strings))

    @cached_property
    def _needles(self) -> frozenset[str] | None:
        if self.strings:
            return None
        return frozenset({name.rsplit(".", 1)[-1] for name in self.names} | self.words)

    def may_admit(self, text: str) -> bool:
        """False when ``text`` spells out nothing the gate could admit (no ``ast`` needed)."""
        needles = self._needles
        return needles is None or any(needle in text for needle in needles)

    def admits(self, index: SyntaxIndex) -> bool:
        return (
            not self.words.isdisjoint(index.words)
            or not self.strings.isdisjoint(index.strings)
            or not self.names.isdisjoint(index.referenced)
        )


@dataclass
class SyntaxIndex:
    """Names, words and strings of one module's ``ast``, and its import bindings."""

    chains: set[str] = field(default_factory=set)  # every Name/Attribute chain and its prefixes
    words: set[str] = field(default_factory=set)
    strings: set[str] = field(default_factory=set)
    # local name (or dotted prefix of ``import a.b``) -> what it imports, over all scopes
    imports: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, source: bytes) -> SyntaxIndex | None:
        """The index of ``source``, or None when the stdlib cannot parse it."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes etc.: not ours to report
                tree = ast.parse(source)
        except (SyntaxError, ValueError, UnicodeError, LookupError, RecursionError,
                MemoryError):
            return None
        index = cls()
        try:
            index._add(tree)
        except RecursionError:
            return None
        return index

    @cached_property
    def referenced(self) -> frozenset[str]:
        """Every qualified name a chain of the module may stand for through its imports."""
        found = set(self.chains)
        for chain in self.chains:
            for prefix, rest in _splits(chain):
                for target in self.imports.get(prefix, ()):
                    found.add(target + rest)
        return frozenset(found)

    def _add(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Name, ast.Attribute)):
                chain = _chain(node)
                if chain is not None:
                    self.chains.add(chain)
                self.words.add(node.id if isinstance(node, ast.Name) else node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                self.strings.add(node.value)
                if len(node.value) <= _MAX_ANNOTATION and _ANNOTATION_LIKE.fullmatch(node.value):
                    self._add_annotation(node.value)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.words.update(alias.name.split("."))
                    if alias.asname:
                        self.words.add(alias.asname)
                        self._bind(alias.asname, alias.name)
                    else:
                        parts = alias.name.split(".")
                        for end in range(1, len(parts) + 1):
                            prefix = ".".join(parts[:end])
                            self._bind(prefix, prefix)
            elif isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                base = module if module.endswith(".") or not module else module + "."
                for alias in node.names:
                    self.words.add(alias.name)
                    if alias.name == "*":
                        continue
                    if alias.asname:
                        self.words.add(alias.asname)
                    self._bind(alias.asname or alias.name, base + alias.name)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.words.add(node.name)
            elif isinstance(node, ast.arg):
                self.words.add(node.arg)
            elif isinstance(node, ast.keyword) and node.arg is not None:
                self.words.add(node.arg)

    def _add_annotation(self, text: str) -> None:
        try:
            parsed = ast.parse(text.strip(), mode="eval")
        except SyntaxError:
            return
        for node in ast.walk(parsed):
            if isinstance(node, (ast.Name, ast.Attribute)):
                chain = _chain(node)
                if chain is not None:
                    self.chains.add(chain)
                self.words.add(node.id if isinstance(node, ast.Name) else node.attr)

    def _bind(self, local: str, target: str) -> None:
        self.imports.setdefault(local, set()).add(target)


def _chain(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _splits(chain: str) -> Iterator[tuple[str, str]]:
    """``a.b.c`` -> (``a``, ``.b.c``), (``a.b``, ``.c``), (``a.b.c``, ``""``)."""
    start = 0
    while True:
        dot = chain.find(".", start)
        if dot == -1:
            yield chain, ""
            return
        yield chain[:dot], chain[dot:]
        start = dot + 1


class SourceSyntax:
    """One file's stdlib index (built on first use) and the LibCST tree parsed from it."""

    def __init__(self, source: bytes) -> None:
        self._source = source
        self.tree: object | None = None  # the engine's parse; codemods trust the index on it

    @cached_property
    def index(self) -> SyntaxIndex | None:
        return SyntaxIndex.of(self._source)
