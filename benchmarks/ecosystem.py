"""`make ecosystem`: retrofit each real repository under ``../shared/corpora`` and judge the result.

Real code is the judge (ruff checks itself against its ecosystem the same way). For each corpus
folder that is present, a copy is committed to a fresh git repository, its documented
``[tool.scaffold]`` configuration (the first TOML block of the README beside it that has one)
is appended to its root ``pyproject.toml`` when missing, and then:

- ``scaffold retrofit`` writes (tests included) and a second ``retrofit --check`` must be clean;
- every rewritten module is imported in a fresh venv built from the declared dependencies of
  the projects that own them (after the retrofit, so what retrofit added is in), and the same
  modules of the original tree in the same venv, so only a regression counts;
- ruff, under the corpus's own settings, counts the violations on the lines retrofit touched
  that the original lines did not have;
- when the corpus ships a unit-test harness beside it (``<name>-unit-tests TREE OUT.xml VENV``,
  and ``junit-diff``), its own unit tests run before and after.

One row per corpus; exit 1 when any corpus regressed (a second run not clean, a module that
imported before and does not now, a new ruff violation, a test that passed before and fails).
A fresh clone has no ``../shared``: then there is nothing to judge and the run says so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scaffold.repo.packaging import Packaging

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPORA = REPO.parent / "shared" / "corpora"
CACHE = REPO / ".ecosystem"  # venvs reused between runs (gitignored)


@dataclass
class Row:
    """What one corpus showed; printed as one line of the table."""

    name: str
    files_changed: int = 0
    changes: int = 0
    findings: int = 0
    second_run_clean: bool | None = None
    # importable after, importable before (of those that existed), rewritten or new modules
    imports: tuple[int, int, int] | None = None
    import_regressions: list[str] = field(default_factory=list)
    new_ruff: int | None = None  # on touched lines of files the repo had
    new_ruff_created: int | None = None  # in files retrofit created (kits, generated tests)
    ruff_details: list[str] = field(default_factory=list)
    unit_before: str = ""
    unit_after: str = ""
    unit_regressed: bool | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # printed, not regressions

    @property
    def regressed(self) -> bool:
        return bool(self.second_run_clean is False or self.import_regressions
                    or self.new_ruff or self.unit_regressed or self.problems)


def _run(args: Sequence[str | Path], *, cwd: Path | None = None, check: bool = False,
         env: dict[str, str] | None = None, timeout: float | None = None
         ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} exited {done.returncode}:\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done


def _git(tree: Path, *args: str) -> str:
    return _run(["git", "-C", tree, *args], check=True).stdout


def documented_config(readme: Path) -> str | None:
    """The first fenced TOML block of ``readme`` that holds a ``[tool.scaffold]`` table."""
    if not readme.is_file():
        return None
    for block in re.findall(r"```toml\n(.*?)```", readme.read_text(encoding="utf-8"), re.S):
        if "[tool.scaffold" in block:
            return "\n".join(line.strip() for line in block.strip().splitlines()) + "\n"
    return None


def prepare(corpus: Path, dest: Path) -> Path:
    """A writable, committed copy of ``corpus`` with its documented configuration."""
    tree = dest / corpus.name
    shutil.copytree(corpus, tree, symlinks=True)
    for path in (tree, *tree.rglob("*")):
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)
    config = documented_config(corpus / "README.md")
    pyproject = tree / "pyproject.toml"
    if config and pyproject.is_file() and "[tool.scaffold]" not in pyproject.read_text("utf-8"):
        with pyproject.open("a", encoding="utf-8") as out:
            out.write("\n" + config)
    _git(tree, "init", "-q")
    _git(tree, "add", "-A")
    _run(["git", "-C", tree, "-c", "user.name=ecosystem", "-c", "user.email=e@localhost",
          "commit", "-qm", "base"], check=True)
    return tree


def retrofit(tree: Path, *extra: str) -> dict:
    done = _run([sys.executable, "-m", "scaffold", "retrofit", "--format", "json", *extra, tree],
                cwd=tree)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"retrofit printed no JSON (exit {done.returncode}):\n"
                           f"{done.stderr[-3000:]}") from exc


def changed_files(tree: Path) -> list[Path]:
    """Files the work tree changed or added against the base commit."""
    names = _git(tree, "status", "--porcelain", "--untracked-files=all").splitlines()
    return sorted(tree / line[3:].strip() for line in names if line[3:].strip())


def import_root(path: Path, packaging: Packaging) -> tuple[Path, str] | None:
    """Where ``path`` is imported from and its dotted name, as the packaging metadata says
    (the same model retrofit places kits by: src/ layouts, package lists, namespace folders)."""
    name = packaging.module_of(path)
    if not name or not all(part.isidentifier() for part in name.split(".")):
        return None
    return packaging.root_of(path).path, name


def harness_env(corpus: Path) -> dict[str, str]:
    """The variables the corpus's own test harness exports (settings its modules read at
    import), so an import that needs them is judged as the corpus's maintainers run it."""
    harness = corpus.parent / f"{corpus.name}-unit-tests"
    found: dict[str, str] = {}
    if harness.is_file():
        for line in harness.read_text("utf-8").splitlines():
            if line.startswith("export "):
                found.update(re.findall(r"(\w+)=(\S+)", line[len("export "):]))
    return found


def local_projects(top: Path) -> dict[str, Path]:
    """Every project folder in the tree by its normalised distribution name."""
    import tomllib

    found: dict[str, Path] = {}
    for manifest in top.rglob("pyproject.toml"):
        if any(part.startswith(".") for part in manifest.relative_to(top).parts):
            continue
        try:
            name = tomllib.loads(manifest.read_text("utf-8")).get("project", {}).get("name")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
        if name:
            found[_normalise(name)] = manifest.parent
    return found


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(project: Path) -> set[str]:
    import tomllib

    try:
        data = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return set()
    specs = list(data.get("project", {}).get("dependencies", []))
    specs += list(data.get("tool", {}).get("poetry", {}).get("dependencies", {}))
    return {_normalise(m.group(0)) for spec in specs
            if (m := re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec))}


def install_projects(python: Path, projects: Iterable[Path], top: Path,
                     constraints: Path | None) -> dict[Path, str]:
    """Install each of ``projects`` with its declared dependencies; local projects they name
    come from the tree (editable), never from the registry, where such a name may be someone
    else's. Returns the projects that could not be installed here, with pip's last line."""
    local = local_projects(top)
    pinned: list[str | Path] = ["-c", constraints] if constraints else []
    failed: dict[Path, str] = {}
    for project in projects:
        wanted: list[Path] = []
        pending = [project]
        while pending:
            current = pending.pop()
            if current not in wanted:
                wanted.append(current)
                pending += [local[n] for n in _requirement_names(current) if n in local]
        editable = [arg for folder in reversed(wanted) for arg in ("-e", folder)]
        done = _run([python, "-m", "pip", "install", "-q", *pinned, *editable])
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if line.strip()]
            failed[project] = (errors or ["pip failed"])[-1][:200]
    return failed


def importable(python: Path, modules: Sequence[tuple[Path, str]], env: dict[str, str]
               ) -> dict[str, str]:
    """Each module imported in its own process from its import root: module -> '' or the error."""
    outcome: dict[str, str] = {}
    for root, module in modules:
        done = _run([python, "-c", f"import {module}"], cwd=root,
                    env={**env, "PYTHONPATH": str(root)}, timeout=120)
        last = (done.stderr.strip().splitlines() or [""])[-1]
        outcome[module] = "" if done.returncode == 0 else last[:200]
    return outcome


def check_imports(row: Row, tree: Path, base: Path, files: Sequence[Path], work: Path,
                  constraints: Path | None, harness: dict[str, str]) -> None:
    """Rewritten modules import after retrofit wherever they imported before."""
    packaging = Packaging(tree)
    modules = []
    for path in files:
        if path.suffix == ".py" and not packaging.is_test_file(path):
            located = import_root(path, packaging)
            if located:
                modules.append((path, *located))
    if not modules:
        row.imports = (0, 0, 0)
        return
    python = _fresh_venv(work / "imports-venv")
    projects = {p for path, _, _ in modules if (p := packaging.project_of(path))}
    not_installable = install_projects(python, sorted(projects), tree, constraints)
    row.notes += [f"not installable here (modules not counted): {p.relative_to(tree)}: {why}"
                     for p, why in not_installable.items()]
    modules = [m for m in modules if packaging.project_of(m[0]) not in not_installable]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(harness)
    after = importable(python, [(root, name) for _, root, name in modules], env)
    existed = [(base / root.relative_to(tree), name) for path, root, name in modules
               if (base / path.relative_to(tree)).exists()]  # new files (kits) had no before
    before = importable(python, existed, env)
    row.imports = (sum(not e for e in after.values()), sum(not e for e in before.values()),
                   len(modules))
    row.import_regressions = [f"{m}: {after[m]}" for m in after
                              if after[m] and (m not in before or not before[m])]
    row.notes += [f"does not import, before or after: {m}: {after[m]}" for m in after
                  if after[m] and before.get(m)]


def _fresh_venv(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    python = folder / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    return python


def added_lines(tree: Path) -> dict[Path, set[int]]:
    """Per changed file, the line numbers (in the new file) that the work tree added."""
    _git(tree, "add", "-A", "--intent-to-add")
    diff = _git(tree, "diff", "-U0", "--no-color", "HEAD")
    lines: dict[Path, set[int]] = {}
    current: Path | None = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            current = None if line[4:] == "/dev/null" else tree / line[6:]
        elif line.startswith("@@") and current is not None:
            hunk = re.match(r"@@ -\S+ \+(\d+)(?:,(\d+))? @@", line)
            if hunk:
                start, count = int(hunk.group(1)), int(hunk.group(2) or 1)
                lines.setdefault(current, set()).update(range(start, start + count))
    return lines


def _ruff(files: Sequence[Path], cwd: Path) -> list[dict]:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"
    done = _run([ruff, "check", "--output-format", "json", "--no-cache", "--exit-zero",
                 *files], cwd=cwd)
    return json.loads(done.stdout or "[]")


def new_ruff_violations(tree: Path, base: Path, touched: dict[Path, set[int]]) -> list[str]:
    """Violations on touched lines, under the tree's own ruff settings, that the same code had
    not before (matched by rule and line text, since lines move)."""
    files = [p for p in touched if p.suffix == ".py" and p.exists()]
    if not files:
        return []
    after = _ruff(files, tree)
    old_files = [base / p.relative_to(tree) for p in files if (base / p.relative_to(tree)).exists()]
    before = _ruff(old_files, base) if old_files else []

    def text(path: Path, line: int) -> str:
        try:
            return path.read_text("utf-8").splitlines()[line - 1].strip()
        except (IndexError, OSError, UnicodeDecodeError):
            return ""

    seen = {(v["code"], Path(v["filename"]).relative_to(base),
             text(Path(v["filename"]), v["location"]["row"])) for v in before}
    found = []
    for v in after:
        path, row = Path(v["filename"]), v["location"]["row"]
        key = (v["code"], path.relative_to(tree), text(path, row))
        if row in touched.get(path, set()) and key not in seen:
            found.append(f"{path.relative_to(tree)}:{row}: {v['code']} {v['message']}")
    return found


def unit_tests(row: Row, corpus: Path, tree: Path, base: Path, constraints: Path | None,
               manifests: Sequence[Path]) -> None:
    """The corpus's own unit tests before and after, with its harness, in one cached venv."""
    harness = corpus.parent / f"{corpus.name}-unit-tests"
    differ = corpus.parent / "junit-diff"
    if not harness.is_file():
        return
    CACHE.mkdir(exist_ok=True)
    venv_dir = CACHE / f"{corpus.name}-venv"
    work = tree.parent
    done = _run(["bash", harness, base, work / "before.xml", venv_dir])
    row.unit_before = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "?"
    for manifest in manifests:  # what retrofit added to the declared dependencies
        args: list[str | Path] = [venv_dir / "bin" / "python", "-m", "pip", "install", "-q"]
        if constraints:
            args += ["-c", constraints]
        _run([*args, "-e", manifest.parent])
    done = _run(["bash", harness, tree, work / "after.xml", venv_dir])
    row.unit_after = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "?"
    if differ.is_file():
        diff = _run([sys.executable, differ, work / "before.xml", work / "after.xml"])
        row.unit_regressed = diff.returncode != 0
        if row.unit_regressed:
            row.problems.append("unit tests regressed:\n" + diff.stdout[-4000:])


def judge(corpus: Path, work: Path, *, with_unit_tests: bool, with_imports: bool) -> Row:
    row = Row(corpus.name)
    tree = prepare(corpus, work)
    base = work / f"{corpus.name}-base"
    _git(tree, "worktree", "add", "-q", "--detach", str(base), "HEAD")
    constraints = corpus.parent / f"{corpus.name}-constraints.txt"
    constraints = constraints if constraints.is_file() else None

    report = retrofit(tree)
    row.changes = report["summary"]["changes"]
    row.findings = report["summary"]["findings"]
    files = changed_files(tree)
    row.files_changed = len(files)
    again = retrofit(tree, "--check")
    row.second_run_clean = not [s for s in again["sites"] if s["kind"] == "change"]
    if not row.second_run_clean:
        row.problems += [f"second run: {s['path']}:{s['line']}: {s['rule_id']} {s['message']}"
                         for s in again["sites"] if s["kind"] == "change"][:20]
    violations = new_ruff_violations(tree, base, added_lines(tree))
    existing = [v for v in violations if (base / v.split(":", 1)[0]).exists()]
    created = [v for v in violations if v not in existing]
    row.new_ruff, row.new_ruff_created = len(existing), len(created)
    row.ruff_details = existing + [f"(created file) {v}" for v in created[:10]]
    manifests = [p for p in files if p.name == "pyproject.toml" or p.name.startswith(
        "requirements")]
    if with_imports:
        check_imports(row, tree, base, files, work, constraints, harness_env(corpus))
    if with_unit_tests:
        unit_tests(row, corpus, tree, base, constraints, manifests)
    return row


def print_table(rows: Sequence[Row]) -> None:
    header = ("corpus", "files changed", "changes", "findings", "second run clean",
              "imports after/before/all", "new ruff (changed files/created files)",
              "unit tests before", "unit tests after")
    print(" | ".join(header))
    for row in rows:
        imports = "/".join(map(str, row.imports)) if row.imports else "-"
        clean = {True: "yes", False: "no", None: "-"}[row.second_run_clean]
        print(" | ".join(map(str, (row.name, row.files_changed, row.changes, row.findings, clean,
                                   imports, "-" if row.new_ruff is None
                                   else f"{row.new_ruff}/{row.new_ruff_created}",
                                   row.unit_before or "-", row.unit_after or "-"))))
    for row in rows:
        for line in [*row.import_regressions, *row.ruff_details[:40], *row.problems,
                     *row.notes]:
            print(f"{row.name}: {line}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    parser.add_argument("--only", action="append", default=[], help="corpus names to run")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--no-unit-tests", action="store_true")
    parser.add_argument("--no-imports", action="store_true")
    args = parser.parse_args(argv)
    if not args.corpora.is_dir():
        print(f"ecosystem: no corpora at {args.corpora}: nothing to judge")
        return 0
    corpora = sorted(p for p in args.corpora.iterdir() if p.is_dir()
                     and (not args.only or p.name in args.only))
    rows = []
    work = args.keep or Path(tempfile.mkdtemp(prefix="scaffold-ecosystem-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for corpus in corpora:
            print(f"ecosystem: {corpus.name} ...", file=sys.stderr)
            try:
                rows.append(judge(corpus, work, with_unit_tests=not args.no_unit_tests,
                                  with_imports=not args.no_imports))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                rows.append(Row(corpus.name, problems=[f"run failed: {exc}"]))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print_table(rows)
    return 1 if any(row.regressed for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
