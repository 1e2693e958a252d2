"""Per-file facts rules need when they record a site: suppression comments and line mapping.

The engine puts one ``FileState`` in ``CodemodContext.scratch[FILE_STATE]`` for every file.
Rules record sites against the tree they visit; after an earlier codemod has changed the tree,
``original_line`` maps a line back to the file as it is on disk, so messages, suppression
comments and SARIF regions all speak about the same lines the user sees.
"""

from __future__ import annotations

import difflib
import io
import re
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scaffold.repo import RepoModel

FILE_STATE = "scaffold.file"
SETTINGS = "scaffold.settings"  # the Settings of the project the file belongs to
SYNTAX = "scaffold.syntax"  # the file's stdlib index and the LibCST tree parsed with it
REPO = "scaffold.repo"  # the run's scaffold.repo.RepoModel (absent: build one of this file)
MODULE = "scaffold.module"  # the dotted module the file is in the model (absent: unknown)
SUPPRESSION_MARK = "scaffold:"
ALL_RULES = "*"

_SUPPRESSION = re.compile(r"#\s*scaffold:\s*ignore\b(?:\[(?P<ids>[^\]]*)\])?")


def parse_suppressions(text: str) -> dict[int, frozenset[str]]:
    """Line -> rule ids silenced there by ``# scaffold: ignore[ID, ...]`` (``*`` for a bare one).

    Comments are found with ``tokenize`` so the words inside a string never count.
    """
    found: dict[int, frozenset[str]] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type != tokenize.COMMENT:
                continue
            match = _SUPPRESSION.search(token.string)
            if not match:
                continue
            ids = match.group("ids")
            names = {part.strip() for part in ids.split(",")} - {""} if ids else {ALL_RULES}
            found[token.start[0]] = found.get(token.start[0], frozenset()) | names
    except (tokenize.TokenError, SyntaxError):
        pass  # LibCST parsed it, so this only happens on exotic input: no suppressions then
    return found


def line_map(original: str, current: str) -> list[int]:
    """For each line of ``current`` (index = line - 1), the line of ``original`` it came from.

    Inserted lines map to the original line just before them.
    """
    before, after = original.splitlines(), current.splitlines()
    mapping = [0] * len(after)
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for offset, j in enumerate(range(j1, j2)):
            mapping[j] = min(i1 + offset + 1, i2) if tag in ("equal", "replace") else max(i1, 1)
    return mapping


@dataclass
class FileState:
    """Where sites are, and which are silenced, for the file being processed."""

    path: str
    suppressions: dict[int, frozenset[str]] = field(default_factory=dict)
    test: bool = False  # test code, as discovery decided (scaffold.engine.discovery.is_test_file)
    lines: list[int] | None = None  # current line -> original line, once the tree has changed
    # computes ``lines`` when a site is first recorded on a changed tree (a diff is not free)
    pending_lines: Callable[[], list[int]] | None = None

    # when LibCST parsed a slice of the file: its line -> the file's, and whether code it left
    # out uses a plain name (scaffold.engine.slicing.Slice)
    sliced_lines: Callable[[int], int] | None = None
    left_out_uses: Callable[[str], bool] = lambda name: False

    def original_line(self, line: int) -> int:
        if self.pending_lines is not None:
            self.lines, self.pending_lines = self.pending_lines(), None
        if self.lines is not None and 0 < line <= len(self.lines):
            line = self.lines[line - 1]
        return self.sliced_lines(line) if self.sliced_lines is not None else line

    def suppressed(self, rule_id: str, *lines: int) -> bool:
        for line in lines:
            ids = self.suppressions.get(line)
            if ids and (ALL_RULES in ids or rule_id in ids):
                return True
        return False


def repo_of(scratch: dict[str, Any], path: str, helper_module: str | None = None) -> RepoModel:
    """The run's repo model from a rule's context scratch; without a run (``process_source``
    with no model), a model of the file alone, built once from its stdlib index."""
    repo = scratch.get(REPO)
    if repo is None:
        syntax = scratch.get(SYNTAX)
        index = syntax.index if syntax is not None else None
        repo = RepoModel.single(syntax.source if syntax is not None else b"", path,
                                tree=index.tree if index is not None else None,
                                helper_module=helper_module)
        scratch[REPO] = repo
        scratch[MODULE] = next(iter(repo.modules))
    return repo


def module_of(scratch: dict[str, Any], path: str, helper_module: str | None = None) -> str | None:
    """The dotted module the file is in ``repo_of(...)`` (None: outside every import root)."""
    repo_of(scratch, path, helper_module)
    return scratch.get(MODULE)
