"""Value types every part of the engine, the codemods, the checks and the reporters share."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from scaffold.config import ImportSorting

# How a site that needs the kit, in a file retrofit found no place to vendor one for, is
# reported: vendoring reads it to explain why, once per project.
NO_KIT_MESSAGE = "no kit to call here"
# The first bytes of every file retrofit vendored (``scaffold.vendor`` writes the rest of the
# line): such a file is output, never input, so the engine neither rewrites nor reports it.
VENDORED_HEADER_PREFIX = "# Vendored by scaffold retrofit from kit "


def is_vendored(source: bytes) -> bool:
    """Does this file start with the vendored-kit header?"""
    return source.startswith(VENDORED_HEADER_PREFIX.encode())


class Kind(StrEnum):
    """What a reported site is: a rewrite made (or that would be made), or a finding not fixed."""

    CHANGE = "change"
    FINDING = "finding"


class Status(StrEnum):
    """One file's outcome, as LibCST's codemod runner reports it (success, skip, failure)."""

    UNCHANGED = "unchanged"
    CHANGED = "changed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, order=True)
class Finding:
    """One site: where it is, which rule saw it, and what it says (rule ids are kebab-case).

    Lines and columns are 1-based, as editors count; for a rewrite they point into the file as
    it was before the run.
    """

    path: str
    line: int
    column: int
    rule_id: str
    message: str
    kind: Kind = Kind.FINDING
    end_line: int | None = None
    end_column: int | None = None


class SiteKind(StrEnum):
    """What a propagation site is: where trace context has to cross a boundary or be set up."""

    KAFKA_PRODUCE = "kafka-produce"
    KAFKA_CONSUME = "kafka-consume"
    ENVELOPE_BUILD = "envelope-build"
    ENVELOPE_INTAKE = "envelope-intake"
    HTTP_CALL = "http-call"
    THREAD_HANDOFF = "thread-hand-off"
    QUEUE = "queue"
    CONTEXT_TOKEN = "context-token"
    TRACING_SETUP = "tracing-setup"

    @property
    def label(self) -> str:
        """How a summary counts them: "Kafka sends", "HTTP calls"."""
        return _SITE_LABELS[self]

    @property
    def verb(self) -> str:
        """What its sites do when they are right: "carry context", "set tracing up"."""
        return _SITE_VERBS.get(self, "carry context")


_SITE_LABELS = {
    SiteKind.KAFKA_PRODUCE: "Kafka sends",
    SiteKind.KAFKA_CONSUME: "Kafka consumers",
    SiteKind.ENVELOPE_BUILD: "envelope builds",
    SiteKind.ENVELOPE_INTAKE: "envelope intakes",
    SiteKind.HTTP_CALL: "HTTP calls",
    SiteKind.THREAD_HANDOFF: "thread hand-offs",
    SiteKind.QUEUE: "queue items",
    SiteKind.CONTEXT_TOKEN: "context tokens",
    SiteKind.TRACING_SETUP: "tracing set-ups",
}

_SITE_VERBS = {
    SiteKind.CONTEXT_TOKEN: "are always detached",
    SiteKind.TRACING_SETUP: "set tracing up",
}


class SiteStatus(StrEnum):
    """Where a propagation site stands.

    ``correct``: it already carries the context; ``fixable``: retrofit would change it;
    ``fixed``: this (writing) run changed it; ``reported``: a finding, left as it is (the
    reason says why); ``skipped``: seen but out of scope (test code, a suppression comment,
    a host the rule leaves alone; the reason says which).
    """

    CORRECT = "correct"
    FIXABLE = "fixable"
    FIXED = "fixed"
    REPORTED = "reported"
    SKIPPED = "skipped"


@dataclass(frozen=True, order=True)
class Site:
    """One propagation site a rule saw (``scaffold report``'s rows); lines as on disk."""

    path: str
    line: int
    column: int
    kind: SiteKind
    rule_id: str
    status: SiteStatus
    reason: str = ""  # why it is reported or skipped (for the others: what the rule saw)


@dataclass(frozen=True)
class FileResult:
    """Everything the engine learnt about one file; the CLI only prints these."""

    path: str
    status: Status
    findings: tuple[Finding, ...] = ()
    reason: str | None = None  # why it was skipped or failed
    original: str | None = field(default=None, repr=False)  # text before, when changed
    updated: str | None = field(default=None, repr=False)  # text after, when changed
    sites: tuple[Site, ...] = ()  # every propagation site the rules saw, sorted


@dataclass(frozen=True)
class Settings:
    """What a rule may read about the project a file belongs to ([tool.scaffold] + discovery)."""

    # import path of the kit this file's rewrites call: configured, existing, or where retrofit
    # vendors it (scaffold.vendor.KitResolver); None when the file has nowhere to import it from
    kit: str | None = None
    helper_module: str | None = None  # an existing HuleEdu-style helper library to call
    service_name: str | None = None  # [tool.scaffold] service-name, for the bootstrap codemod
    kafka_producers: tuple[str, ...] = ()  # [tool.scaffold] kafka-producers, for kafka-produce
    unsafe_fixes: bool = False  # apply codemods whose FIX_SAFETY is "unsafe"
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # by rule id

    import_sorting: ImportSorting = field(default_factory=lambda: ImportSorting())
    line_length: int | None = None  # the repo's ruff/black line-length (None: not known)

    @property
    def first_party(self) -> Collection[str]:
        """Top-level packages of the repo itself, for import sections: under a ruff
        configuration, what ruff counts as first party for this file; otherwise the kit's and
        those the repo's isort settings name."""
        if self.import_sorting.src:
            return _FirstParty(self.import_sorting)
        kit = {self.kit.split(".")[0]} if self.kit else set()
        return frozenset(kit | {name.split(".")[0] for name in self.import_sorting.first_party})


class _FirstParty(Collection[str]):
    """ruff's first-party test for one file (``ImportSorting.is_first_party``); iterating
    gives only the names its settings list."""

    def __init__(self, sorting: ImportSorting) -> None:
        self.sorting = sorting

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.sorting.is_first_party(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.sorting.first_party)

    def __len__(self) -> int:
        return len(self.sorting.first_party)
