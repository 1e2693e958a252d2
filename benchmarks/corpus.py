"""`make corpus`: retrofit third-party code nobody here wrote, and prove no harm was done.

Copies the installed sources of several packages from the running environment into a temporary
folder, runs `scaffold retrofit --check`, then a write run, and checks: no rule crashed, every
rewritten file parses and byte-compiles (`python -m compileall`), and a second run changes
nothing. Prints the counts; exits non-zero on any violation.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import libcst as cst

from scaffold.api import Options, run
from scaffold.codemods import all_codemods
from scaffold.engine import Status

PACKAGES = ("aiokafka", "opentelemetry", "copier", "jinja2", "libcst", "aiohttp", "anyio", "redis")


def _source_folder(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def copy_corpus(destination: Path, packages=PACKAGES) -> list[str]:
    copied = []
    for package in packages:
        folder = _source_folder(package)
        if folder is None:
            continue
        shutil.copytree(folder, destination / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))
        copied.append(package)
    return copied


def check_corpus(root: Path) -> tuple[dict[str, int], list[str]]:
    """Run check, write, re-check over ``root``; return counts and the problems found."""
    problems: list[str] = []
    checked = run([root], all_codemods(), Options(write=False))
    written = run([root], all_codemods(), Options(write=True))
    for result in (*checked.results, *written.results):
        if result.reason and result.reason.startswith("internal error"):
            problems.append(f"{result.path}: {result.reason}")
    if [r.path for r in checked.changed] != [r.path for r in written.changed]:
        problems.append("the check run and the write run disagree on what changes")
    changed = [Path(r.path) for r in written.changed]
    for path in changed:
        try:
            cst.parse_module(path.read_bytes())
        except Exception as exc:  # any parse failure of our own output is a defect
            problems.append(f"{path}: rewritten file does not parse: {exc}")
    if changed:
        compiled = subprocess.run([sys.executable, "-m", "compileall", "-q", *map(str, changed)],
                                  capture_output=True, text=True)
        if compiled.returncode != 0:
            problems.append(f"compileall failed:\n{compiled.stdout}{compiled.stderr}")
    again = run([root], all_codemods(), Options(write=False))
    if again.changed:
        problems.append(f"second run would change {[r.path for r in again.changed]}")
    counts = {
        "files": len(checked.results),
        "parse failures (left untouched)": len(checked.failed),
        "files changed": len(written.changed),
        "changes": sum(1 for f in written.findings if f.kind == "change"),
        "findings": sum(1 for f in written.findings if f.kind == "finding"),
        "second-run changes": len(again.changed),
        "rule crashes": sum(1 for r in written.results
                            if r.status is Status.FAILED and "internal error" in (r.reason or "")),
    }
    return counts, problems


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="scaffold-corpus-") as folder:
        root = Path(folder)
        packages = copy_corpus(root)
        counts, problems = check_corpus(root)
    print(f"corpus: {', '.join(packages)}")
    for name, value in counts.items():
        print(f"  {name}: {value}")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    print("corpus: OK" if not problems else f"corpus: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
