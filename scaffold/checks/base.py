"""The ``Check`` base class: a lint-only rule that reports tracing mistakes it cannot fix safely.

A check is one module in ``scaffold.checks`` holding one ``Check`` subclass. The module name is
the id (``baggage_cardinality`` -> ``baggage-cardinality``) and the first line of the module
docstring is the summary, so both are written once (django-upgrade's ``Fixer`` and Fixit's
``LintRule`` do the same). Its ``VALID`` and ``INVALID`` examples double as the test suite:
every line of an invalid example that ends in ``# <-`` must get exactly one finding, and no
other line any.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from textwrap import dedent
from typing import Any, ClassVar

import libcst as cst
from libcst.codemod import CodemodContext, ContextAwareVisitor
from libcst.metadata import PositionProvider, ProviderT

from scaffold.engine.discovery import is_test_file
from scaffold.engine.model import Finding, Settings, Site, SiteKind, SiteStatus, Status
from scaffold.engine.options import resolve_options
from scaffold.engine.runner import process_source
from scaffold.engine.sites import FILE_STATE, SETTINGS, module_of, repo_of
from scaffold.repo import RepoModel

EXPECTED_MARK = "# <-"


@dataclass(frozen=True)
class Valid:
    """Source a check must accept without a finding (``path`` matters to path-aware checks)."""

    code: str
    path: str = "service/app.py"

    @property
    def source(self) -> str:
        return dedent(self.code).lstrip("\n")


@dataclass(frozen=True)
class Invalid(Valid):
    """Source whose lines ending in ``# <-`` each carry exactly one finding of the check."""

    @property
    def expected_lines(self) -> list[int]:
        return [
            number
            for number, text in enumerate(self.source.splitlines(), start=1)
            if text.rstrip().endswith(EXPECTED_MARK)
        ]


def _as_example(example: str | Valid) -> Valid:
    return Valid(example) if isinstance(example, str) else example


class Check(ContextAwareVisitor):
    """Base of every check; subclasses set the class attributes and call ``report``."""

    ID: ClassVar[str]
    SUMMARY: ClassVar[str]
    WHY: ClassVar[str]
    FIX_HINT: ClassVar[str]
    VALID: ClassVar[Sequence[str | Valid]] = ()
    INVALID: ClassVar[Sequence[str | Invalid]] = ()
    METADATA_DEPENDENCIES: ClassVar[tuple[ProviderT, ...]] = (PositionProvider,)
    # A file is visited only if it contains at least one of these substrings (empty: always).
    PREFILTER: ClassVar[tuple[str, ...]] = ()
    USES_REPO: ClassVar[bool] = False  # reads self.repo: the engine builds one model per run
    # Option defaults; the configuration may override them by name (kebab-case or snake_case).
    OPTIONS: ClassVar[Mapping[str, Any]] = {}
    # Glob patterns (matched against file names) of non-Python files ``check_config_file`` reads.
    CONFIG_FILES: ClassVar[tuple[str, ...]] = ()
    # What its findings' sites are, in `scaffold report` (None: they are no propagation sites).
    SITE_KIND: ClassVar[SiteKind | str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        module = sys.modules[cls.__module__]
        cls.ID = cls.__module__.rsplit(".", 1)[-1].replace("_", "-")
        cls.SUMMARY = (module.__doc__ or cls.__doc__ or "").strip().splitlines()[0]
        if PositionProvider not in cls.METADATA_DEPENDENCIES:
            cls.METADATA_DEPENDENCIES = (PositionProvider, *cls.METADATA_DEPENDENCIES)
        if cls.SITE_KIND is not None:  # a rule module may spell it: SITE_KIND = "queue"
            cls.SITE_KIND = SiteKind(cls.SITE_KIND)

    def __init__(self, context: CodemodContext, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(context)
        self.options = self.resolve_options(options)
        self.findings: list[Finding] = []
        self.sites: list[Site] = []  # recorded with record_site; findings' sites are derived

    @classmethod
    def resolve_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with configured values; unknown names and wrong types are errors."""
        return resolve_options("check", cls.ID, cls.OPTIONS, options)

    @classmethod
    def wants(cls, source: str) -> bool:
        """The cheap text prefilter: can this source contain anything the check looks for?"""
        return not cls.PREFILTER or any(needle in source for needle in cls.PREFILTER)

    @classmethod
    def help_text(cls) -> str:
        """The rule doc in ruff's headings (markdown): what, why, an example, its fix."""
        doc = (sys.modules[cls.__module__].__doc__ or "").strip()
        what = doc.split("\n\n", 1)[1].strip() if "\n\n" in doc else ""
        parts = [cls.SUMMARY]
        if what:
            parts.append(what)
        parts.append(f"Why is this bad? {cls.WHY}")
        if cls.INVALID:
            parts.append(f"Example:\n\n```python\n{_as_example(cls.INVALID[0]).source}```")
        if cls.VALID:
            parts.append(f"Use instead:\n\n```python\n{_as_example(cls.VALID[0]).source}```")
        parts.append(f"Fix: {cls.FIX_HINT}")
        return "\n\n".join(parts)

    @property
    def path(self) -> str:
        return self.context.filename or "<string>"

    @property
    def repo(self) -> RepoModel:
        """The run's repo model (``scaffold.repo``; set ``USES_REPO`` to have one built);
        without a run, a model of this file."""
        settings = self.context.scratch.get(SETTINGS)
        return repo_of(self.context.scratch, self.path, getattr(settings, "helper_module", None))

    @property
    def module_name(self) -> str | None:
        """The dotted module this file is in ``repo`` (None: outside every import root)."""
        settings = self.context.scratch.get(SETTINGS)
        return module_of(self.context.scratch, self.path,
                         getattr(settings, "helper_module", None))

    @property
    def in_test_code(self) -> bool:
        """Test code as the engine judged it (``discovery.is_test_file``), or a test-support
        module (``testing.py``, a ``testing`` package: where pytest plugins and fakes live)."""
        state = self.context.scratch.get(FILE_STATE)
        test = state.test if state is not None else is_test_file(self.path)
        return test or is_test_support(self.path)

    def report(self, node: cst.CSTNode, message: str) -> None:
        """Record a finding at ``node``'s position (columns are 1-based, as editors count)."""
        where = self.get_metadata(PositionProvider, node)
        self.findings.append(
            Finding(
                path=self.path,
                line=where.start.line,
                column=where.start.column + 1,
                rule_id=self.ID,
                message=message,
                end_line=where.end.line,
                end_column=where.end.column + 1,
            )
        )

    def record_correct(self, node: cst.CSTNode, note: str = "") -> None:
        """Record a site that already carries the context (``note``: how)."""
        self.record_site(node, SiteStatus.CORRECT, note)

    def record_skipped(self, node: cst.CSTNode, reason: str) -> None:
        """Record a site seen but left out of scope, and why."""
        self.record_site(node, SiteStatus.SKIPPED, reason)

    def record_site(self, node: cst.CSTNode, status: SiteStatus, reason: str = "", *,
                    kind: SiteKind | None = None) -> None:
        """Record a site the check saw and accepts (``CORRECT``) or leaves out (``SKIPPED``)."""
        declared = kind or self.SITE_KIND
        if declared is None:
            return
        kind = SiteKind(declared)
        where = self.get_metadata(PositionProvider, node).start
        self.sites.append(Site(self.path, where.line, where.column + 1, kind, self.ID, status,
                               reason))

    @classmethod
    def check_config_file(
        cls, path: str, text: str, options: Mapping[str, Any] | None = None
    ) -> list[Finding]:
        """Findings in a non-Python file matched by ``CONFIG_FILES`` (none by default)."""
        return []

    @classmethod
    def reads_config_file(cls, path: str | PurePath) -> bool:
        name = PurePath(path).name
        return any(fnmatch.fnmatch(name, pattern) for pattern in cls.CONFIG_FILES)


def is_test_support(path: str | PurePath) -> bool:
    """A ``testing.py`` module or one in a ``testing`` package: shipped code that serves tests
    (pytest plugins such as the kit's, fakes). Retrofit's scope counts them as code
    (``discovery.is_test_file``); checks about test-only tricks exempt them too."""
    pure = PurePath(path)
    return pure.name == "testing.py" or "testing" in pure.parts[:-1]


def is_test_path(path: str | PurePath) -> bool:
    """Test code (``discovery.is_test_file``) or a test-support module (``is_test_support``),
    judged from ``path`` alone; inside a visit ask ``Check.in_test_code``, which reads the
    engine's decision for the file."""
    return is_test_file(path) or is_test_support(path)


def check_source(
    source: str,
    path: str,
    checks: Iterable[type[Check]],
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Finding]:
    """Findings of ``checks`` on one source, through the engine's parse-once runner.

    For examples, tests and tools; a source that cannot be parsed, or a check that raises, is an
    error here rather than a failed file.
    """
    result = process_source(
        source.encode("utf-8"), path, list(checks), Settings(options=dict(options or {}))
    )
    if result.status is Status.FAILED:
        raise RuntimeError(f"{path}: {result.reason}")
    return list(result.findings)
