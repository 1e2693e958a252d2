"""New ruff violations in the Python files a run touched: the work tree against ``HEAD``.

Usage: ``python benchmarks/ruff_on_touched.py REPO [--json] [--verbose]``. REPO is a git work
tree whose ``HEAD`` is the code before the run (``make ecosystem`` commits the copy first).
Touched files are the Python files ``git diff HEAD`` names plus untracked ones (what a run
created: kits, generated tests). Each file is checked twice under the repo's own ruff settings
(``--stdin-filename`` resolves them for the file's path, ``--force-exclude`` honours its
excludes): as in ``HEAD`` and as in the work tree. A violation of the work tree is new unless
the ``HEAD`` version has one with the same code on the line the diff maps it to; so a line the
run changed counts, and so does an unchanged line a rewrite broke (an import left unused, an
import block no longer sorted). Every violation of an untracked file is new.

Prints ``new ruff violations on touched lines: N in C changed files (E501 3, I001 1), M in K
created files (...)`` and, with ``--verbose``, one line per violation; ``--json`` prints the
same as JSON. Exits 0 (measuring is not judging).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    code: str
    message: str


@dataclass
class Measurement:
    changed_files: int = 0
    created_files: int = 0
    new: list[Violation] = field(default_factory=list)  # in files the run changed
    created: list[Violation] = field(default_factory=list)  # in files the run created

    def summary(self) -> str:
        return (f"new ruff violations on touched lines: {len(self.new)} in "
                f"{self.changed_files} changed files{_codes(self.new)}, "
                f"{len(self.created)} in {self.created_files} created files"
                f"{_codes(self.created)}")


def by_code(violations: list[Violation]) -> dict[str, int]:
    return dict(sorted(Counter(v.code for v in violations).items()))


def _codes(violations: list[Violation]) -> str:
    counts = by_code(violations)
    return " (" + ", ".join(f"{code} {n}" for code, n in counts.items()) + ")" if counts else ""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def _ruff(repo: Path, path: str, source: str) -> list[tuple[int, str, str]]:
    """(line, code, message) of each violation ruff reports for ``source`` at ``path``."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--output-format", "json", "--no-cache",
         "--force-exclude", "--exit-zero", "--stdin-filename", path, "-"],
        cwd=repo, input=source, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ruff failed on {path}: {done.stderr.strip()}")
    return [(item["location"]["row"], item["code"] or "syntax", item["message"])
            for item in json.loads(done.stdout or "[]")]


def line_map(diff: str, lines: int) -> dict[int, int]:
    """New line -> old line for each of the ``lines`` lines of the new file that ``diff``
    (``git diff -U0``) leaves unchanged; changed and added lines are absent."""
    mapping: dict[int, int] = {}
    old_line = new_line = 1
    for text in diff.splitlines():
        match = _HUNK.match(text)
        if not match:
            continue
        old, old_len, new, new_len = (int(g) if g is not None else 1 for g in match.groups())
        old_start = old if old_len else old + 1  # a pure insertion names the line before it
        new_start = new if new_len else new + 1
        while new_line < new_start:
            mapping[new_line] = old_line
            new_line, old_line = new_line + 1, old_line + 1
        old_line, new_line = old_start + old_len, new_start + new_len
    while new_line <= lines:
        mapping[new_line] = old_line
        new_line, old_line = new_line + 1, old_line + 1
    return mapping


def measure(repo: Path) -> Measurement:
    repo = repo.resolve()
    changed = [p for p in _git(repo, "diff", "--name-only", "--diff-filter=AM", "HEAD",
                               "--", "*.py").splitlines() if p]
    untracked = [p for p in _git(repo, "ls-files", "--others", "--exclude-standard",
                                 "--", "*.py").splitlines() if p]
    result = Measurement(changed_files=len(changed), created_files=len(untracked))
    for path in changed:
        after = (repo / path).read_text(encoding="utf-8")
        try:
            before = _git(repo, "show", f"HEAD:{path}")
        except subprocess.CalledProcessError:  # added to the index after HEAD
            before = ""
        diff = _git(repo, "diff", "-U0", "HEAD", "--", path)
        mapping = line_map(diff, after.count("\n") + 1) if before else {}
        old = Counter((line, code) for line, code, _ in _ruff(repo, path, before)) \
            if before else Counter()
        for line, code, message in _ruff(repo, path, after):
            was = mapping.get(line)
            if was is not None and old[(was, code)] > 0:
                old[(was, code)] -= 1
                continue
            result.new.append(Violation(path, line, code, message))
    for path in untracked:
        after = (repo / path).read_text(encoding="utf-8")
        result.created.extend(Violation(path, line, code, message)
                          for line, code, message in _ruff(repo, path, after))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--verbose", action="store_true", help="list every new violation")
    args = parser.parse_args(argv)
    result = measure(args.repo)
    if args.json:
        print(json.dumps({
            "changed_files": result.changed_files, "created_files": result.created_files,
            "new": len(result.new), "new_by_code": by_code(result.new),
            "created": len(result.created), "created_by_code": by_code(result.created),
            "violations": [asdict(v) for v in (*result.new, *result.created)],
        }, indent=2))
        return 0
    print(result.summary())
    if args.verbose:
        for v in (*result.new, *result.created):
            print(f"{v.path}:{v.line}: {v.code} {v.message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
