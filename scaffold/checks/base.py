"""The ``Check`` base class: a lint-only rule that reports tracing mistakes it cannot fix safely.

A check is one module in ``scaffold.checks`` holding one ``Check`` subclass. The module name is
the id (``baggage_cardinality`` -> ``baggage-cardinality``) and the first line of the module
docstring is the summary, so both are written once (django-upgrade's ``Fixer`` and Fixit's
``LintRule`` do the same). Its ``VALID`` and ``INVALID`` examples double as the test suite:
every line of an invalid example that ends in ``# <-`` must get exactly one finding, and no
other line any.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePath
from textwrap import dedent
from typing import Any, ClassVar

import libcst as cst
from libcst.codemod import CodemodContext, ContextAwareVisitor
from libcst.metadata import PositionProvider

from scaffold.engine.discovery import is_test_file
from scaffold.engine.discovery import is_test_support as is_test_support  # checks import it here
from scaffold.engine.model import Finding, Settings, Site, SiteKind, SiteStatus, Status
from scaffold.engine.rule import NO_FIX, RuleDoc, RuleMetadata
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


class Check(RuleMetadata, ContextAwareVisitor):
    """Base of every check; subclasses set the class attributes and call ``report``.

    ``ID``, ``SUMMARY``, ``PREFILTER``, ``USES_REPO``, ``OPTIONS`` (defaults the configuration
    may override by name), ``CONFIG_FILES`` and the text gates are
    ``scaffold.engine.rule.RuleMetadata``'s, shared with codemods.
    """

    KIND = "check"
    WHY: ClassVar[str]
    FIX_HINT: ClassVar[str]
    VALID: ClassVar[Sequence[str | Valid]] = ()
    INVALID: ClassVar[Sequence[str | Invalid]] = ()

    def __init__(self, context: CodemodContext, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(context)
        self.options = self.resolve_options(options)
        self.findings: list[Finding] = []
        self.sites: list[Site] = []  # recorded with record_site; findings' sites are derived

    @classmethod
    def rule_doc(cls) -> RuleDoc:
        """The module docstring's What it does, ``WHY``, the first invalid and valid examples,
        and ``FIX_HINT`` (a check never rewrites: its fix is the user's)."""
        doc = super().rule_doc()
        return replace(
            doc, why=cls.WHY,
            example=_as_example(cls.INVALID[0]).source if cls.INVALID else doc.example,
            use_instead=_as_example(cls.VALID[0]).source if cls.VALID else doc.use_instead,
            fix_safety=f"No automatic fix ({NO_FIX}): a check only reports. {cls.FIX_HINT}",
        )

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
        where = self.get_metadata(PositionProvider, node).start
        self.sites.append(Site(self.path, where.line, where.column + 1, SiteKind(declared),
                               self.ID, status, reason))


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
