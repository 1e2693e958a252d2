"""Value types every part of the engine, the codemods, the checks and the reporters share."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Kind(str, Enum):
    """What a reported site is: a rewrite the tool made (or would make), or a finding it cannot fix."""

    CHANGE = "change"
    FINDING = "finding"


class Status(str, Enum):
    """One file's outcome, as LibCST's codemod runner reports it (success, skip, failure)."""

    UNCHANGED = "unchanged"
    CHANGED = "changed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, order=True)
class Finding:
    """One site: where it is, which rule saw it, and what it says (rule ids are kebab-case)."""

    path: str
    line: int
    column: int
    rule_id: str
    message: str
    kind: Kind = Kind.FINDING
    end_line: int | None = None
    end_column: int | None = None


@dataclass(frozen=True)
class FileResult:
    """Everything the engine learnt about one file; the CLI only prints these."""

    path: str
    status: Status
    findings: tuple[Finding, ...] = ()
    reason: str | None = None  # why it was skipped or failed
    original: str | None = field(default=None, repr=False)  # text before, when changed
    updated: str | None = field(default=None, repr=False)  # text after, when changed
