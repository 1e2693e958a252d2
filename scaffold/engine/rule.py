"""What a rule is to the engine, the metadata every rule shares, and its documentation.

A rule is a codemod class (``scaffold.codemods.base.Codemod``, a LibCST transformer) or a
check class (``scaffold.checks.base.Check``, a LibCST visitor). The engine is handed rules
(``scaffold.registry`` knows them all) and reads from them only what ``Rule`` (and, for
codemods, ``CodemodRule``) declares; both bases get it from ``RuleMetadata``, so the engine
asks every rule the same questions and never probes for an attribute.

``RuleDoc`` is the one rule doc both kinds render (``scaffold rules --explain``, SARIF's help),
under ruff's headings: What it does / Why is this bad? / Example (and Use instead) / Fix
safety / Options.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import PurePath
from textwrap import dedent
from typing import Any, ClassVar, Protocol, TypeGuard

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.metadata import MetadataWrapper, PositionProvider, ProviderT

from scaffold.engine.fast import SiteRecorder
from scaffold.engine.gates import SyntaxGate, SyntaxIndex
from scaffold.engine.model import Finding, Settings, Site, SiteKind
from scaffold.engine.options import resolve_options

NO_FIX = "none"  # the fix safety of a rule that never rewrites (a check)


class RuleVisitor(Protocol):
    """A rule's instance visiting one file: what the engine reads after the visit."""

    @property
    def findings(self) -> Sequence[Finding]: ...

    @property
    def sites(self) -> Sequence[Site]: ...  # recorded with record_correct / record_skipped


class CodemodVisitor(RuleVisitor, SiteRecorder, Protocol):
    """A codemod's instance: its metadata resolved on the engine's wrapper, whether the visit
    changed anything, and its sites positioned with every other codemod's on the same tree."""

    @property
    def changed_something(self) -> bool: ...

    def resolve(self, wrapper: MetadataWrapper) -> AbstractContextManager[None]: ...


class Rule(Protocol):
    """A rule class, as the engine reads it (class attributes and classmethods)."""

    @property
    def ID(self) -> str: ...  # noqa: N802 (rule ids are class constants)

    @property
    def SUMMARY(self) -> str: ...  # noqa: N802

    @property
    def FIX_SAFETY(self) -> str: ...  # noqa: N802

    @property
    def PREFILTER(self) -> tuple[str, ...]: ...  # noqa: N802

    @property
    def SLICE_WORDS(self) -> frozenset[str] | None: ...  # noqa: N802

    @property
    def SLICE_CALLS(self) -> bool: ...  # noqa: N802

    @property
    def USES_REPO(self) -> bool: ...  # noqa: N802

    @property
    def SITE_KIND(self) -> SiteKind | str | None: ...  # noqa: N802

    def wants(self, source: str) -> bool: ...

    def wants_configured(self, source: str, options: Mapping[str, Any] | None) -> bool: ...

    def syntax_gate(self, settings: Settings) -> SyntaxGate | None: ...

    def slice_carriers(self, index: SyntaxIndex,
                       settings: Settings) -> frozenset[str] | None: ...

    def resolve_options(self, options: Mapping[str, Any] | None) -> dict[str, Any]: ...

    def get_inherited_dependencies(self) -> Collection[ProviderT]: ...

    def reads_config_file(self, path: str | PurePath) -> bool: ...

    def check_config_file(self, path: str, text: str,
                          options: Mapping[str, Any] | None = None) -> list[Finding]: ...

    def help_text(self) -> str: ...

    def __call__(self, context: CodemodContext,
                 options: Mapping[str, Any] | None = None) -> RuleVisitor: ...


class CodemodRule(Rule, Protocol):
    """A codemod class: its instances transform the tree."""

    def __call__(self, context: CodemodContext,
                 options: Mapping[str, Any] | None = None) -> CodemodVisitor: ...


def is_codemod(rule: Rule) -> TypeGuard[CodemodRule]:
    """Codemods transform (LibCST transformers); checks only visit."""
    return isinstance(rule, type) and issubclass(rule, cst.CSTTransformer)


def as_visitor(instance: RuleVisitor) -> cst.CSTVisitor | cst.CSTTransformer:
    """The LibCST visitor a rule's instance is (every rule derives from one)."""
    assert isinstance(instance, (cst.CSTVisitor, cst.CSTTransformer)), instance
    return instance


class RuleMetadata:
    """The class-level metadata codemods and checks share, with its defaults.

    The module name is the id (``token_finally`` -> ``token-finally``) and the first line of
    the module docstring the summary, so both are written once (as django-upgrade's
    ``Fixer`` and Fixit's ``LintRule`` do); a class may set ``ID``/``SUMMARY`` itself.
    """

    KIND: ClassVar[str] = "rule"  # "codemod" or "check": how messages name the rule
    ID: ClassVar[str]
    SUMMARY: ClassVar[str]
    FIX_SAFETY: ClassVar[str] = NO_FIX
    # A file is parsed only if it contains at least one of these substrings (empty: always).
    PREFILTER: ClassVar[tuple[str, ...]] = ()
    # Then checked on the stdlib ast: what the code must name for the rule to act (None: parse).
    GATE: ClassVar[SyntaxGate | None] = None
    # Site words that let the engine parse only the definitions naming them (engine.slicing);
    # None: the whole module.
    SLICE_WORDS: ClassVar[frozenset[str] | None] = None
    # With slicing: it reads the functions a site's function calls, or its callers, in the
    # same file (kept code then keeps what it names, and what names it).
    SLICE_CALLS: ClassVar[bool] = False
    # Reads the repo model (self.repo): the engine builds one per run only if a rule does.
    USES_REPO: ClassVar[bool] = False
    OPTIONS: ClassVar[Mapping[str, Any]] = {}  # [tool.scaffold.options.<id>]: name -> default
    # Glob patterns (matched against file names) of non-Python files ``check_config_file`` reads.
    CONFIG_FILES: ClassVar[tuple[str, ...]] = ()
    METADATA_DEPENDENCIES: ClassVar[Collection[ProviderT]] = (PositionProvider,)
    # What its sites are in `scaffold report` (None: it records no propagation sites): its
    # changes are fixable sites, its findings reported ones (a module may spell the kind:
    # SITE_KIND = "http-call").
    SITE_KIND: ClassVar[SiteKind | str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.ID = cls.__dict__.get("ID") or cls.__module__.rsplit(".", 1)[-1].replace("_", "-")
        doc = _module_doc(cls) or (cls.__doc__ or "").strip()
        cls.SUMMARY = cls.__dict__.get("SUMMARY") or (doc.splitlines()[0] if doc else cls.ID)
        if cls.SITE_KIND is not None:
            cls.SITE_KIND = SiteKind(cls.SITE_KIND)
        if PositionProvider not in cls.METADATA_DEPENDENCIES:
            cls.METADATA_DEPENDENCIES = (PositionProvider, *cls.METADATA_DEPENDENCIES)

    @classmethod
    def resolve_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """``OPTIONS`` overlaid with configured values; unknown names and wrong types (and any
        option for a rule that takes none) are configuration errors, never no-ops."""
        return resolve_options(cls.KIND, cls.ID, cls.OPTIONS, options)

    @classmethod
    def wants(cls, source: str) -> bool:
        """The cheap text prefilter: can this source contain anything the rule looks for?"""
        return not cls.PREFILTER or any(needle in source for needle in cls.PREFILTER)

    @classmethod
    def wants_configured(cls, source: str, options: Mapping[str, Any] | None) -> bool:
        """The prefilter under configured options (names they add must count too)."""
        return cls.wants(source)

    @classmethod
    def syntax_gate(cls, settings: Settings) -> SyntaxGate | None:
        """The syntax gate for a project's files (override when configured names widen it)."""
        return cls.GATE

    @classmethod
    def slice_carriers(cls, index: SyntaxIndex, settings: Settings) -> frozenset[str] | None:
        """The identifiers of a file (its ``SyntaxIndex``) that carry this rule's sites, for a rule
        that matches names by pattern (a class name's suffix) rather than by a gate's fixed
        names; slicing keeps what names them as it keeps what names a gate's. None: only
        the gate's carry."""
        return None

    @classmethod
    def reads_config_file(cls, path: str | PurePath) -> bool:
        name = PurePath(path).name
        return any(fnmatch.fnmatch(name, pattern) for pattern in cls.CONFIG_FILES)

    @classmethod
    def check_config_file(
        cls, path: str, text: str, options: Mapping[str, Any] | None = None
    ) -> list[Finding]:
        """Findings in a non-Python file matched by ``CONFIG_FILES`` (none by default)."""
        return []

    @classmethod
    def rule_doc(cls) -> RuleDoc:
        """The rule's documentation; by default the module docstring's sections."""
        return RuleDoc.parse(_module_doc(cls) or cls.SUMMARY, fix_safety=cls.FIX_SAFETY,
                             options=cls.OPTIONS, rule_id=cls.ID)

    @classmethod
    def help_text(cls) -> str:
        """The rule doc as markdown (``scaffold rules --explain``, SARIF's help)."""
        return cls.rule_doc().markdown()


def _module_doc(cls: type) -> str:
    module = sys.modules.get(cls.__module__)
    return ((module.__doc__ if module is not None else None) or "").strip()


# a paragraph starting "What it does:", "Why:", "Why is this bad?", "Example::", "Use instead::",
# "Fix safety:" or "Options:" starts that section
_SECTION = re.compile(
    r"(?:(?P<name>What it does|Why|Example|Use instead|Fix safety|Options)::?"
    r"|(?P<bad>Why is this bad\?))[ \t]*")
_FIELDS = {"What it does": "what", "Why": "why", "Example": "example",
           "Use instead": "use_instead", "Fix safety": "fix_safety", "Options": "options_text"}
_CODE = ("example", "use_instead")


@dataclass(frozen=True)
class RuleDoc:
    """A rule's documentation in ruff's sections; ``markdown()`` renders it."""

    summary: str
    what: str = ""
    why: str = ""
    example: str = ""  # code
    use_instead: str = ""  # code
    fix_safety: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)  # name -> default
    options_text: str = ""
    rule_id: str = ""  # names the options' table

    @classmethod
    def parse(cls, doc: str, *, fix_safety: str = NO_FIX,
              options: Mapping[str, Any] | None = None, rule_id: str = "") -> RuleDoc:
        """The sections of a docstring written as the codemods' are: a summary line, then
        paragraphs starting ``What it does:``, ``Why:``, ``Example::`` (an indented block),
        ``Use instead::``, ``Fix safety:`` and, optionally, ``Options:``. Paragraphs before
        the first heading belong to What it does; a paragraph without a heading, to the
        section before it."""
        summary, _, rest = doc.strip().partition("\n")
        raw: dict[str, list[str]] = {}
        current = "what"
        for paragraph in re.split(r"\n[ \t]*\n", rest.strip("\n")):
            heading = _SECTION.match(paragraph)
            if heading is not None:
                current = "why" if heading.group("bad") else _FIELDS[heading.group("name")]
                paragraph = paragraph[heading.end():]
            if paragraph.strip():
                raw.setdefault(current, []).append(paragraph)
        found = {
            name: (dedent("\n\n".join(parts)).strip("\n") + "\n" if name in _CODE
                   else _sentence("\n\n".join(dedent(part).strip() for part in parts)))
            for name, parts in raw.items()
        }
        found.setdefault("fix_safety", _default_safety(fix_safety))
        return cls(summary=summary.strip(), options=dict(options or {}), rule_id=rule_id,
                   **found)

    def markdown(self) -> str:
        parts = [self.summary]
        if self.what:
            parts.append(f"## What it does\n\n{self.what}")
        if self.why:
            parts.append(f"## Why is this bad?\n\n{self.why}")
        if self.example:
            parts.append(f"## Example\n\n```python\n{self.example}```")
            if self.use_instead:
                parts.append(f"Use instead:\n\n```python\n{self.use_instead}```")
        if self.fix_safety:
            parts.append(f"## Fix safety\n\n{self.fix_safety}")
        if self.options or self.options_text:
            listed = "\n".join(f"- `{name.replace('_', '-')}` (default: `{_toml(value)}`)"
                               for name, value in self.options.items())
            text = "\n\n".join(part for part in (self.options_text, listed) if part)
            table = f"[tool.scaffold.options.{self.rule_id or '<id>'}]"
            parts.append(f"## Options\n\nIn `{table}` of `pyproject.toml`:\n\n{text}")
        return "\n\n".join(parts)


def _sentence(text: str) -> str:
    """``text`` starting with a capital, as a section of its own (the docstrings run the
    heading into the sentence: "What it does: finds ...")."""
    return text[:1].upper() + text[1:]


def _default_safety(fix_safety: str) -> str:
    if fix_safety == NO_FIX:
        return "No fix: this rule only reports."
    return f"{fix_safety.capitalize()}."


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(f'"{item}"' for item in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def dotted_name(node: cst.CSTNode) -> str | None:
    """``a.b.c`` for a chain of names and attributes; ``None`` for anything else."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    return None
