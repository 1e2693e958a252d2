"""`make bench`: `scaffold retrofit --check` against a bare LibCST parse-and-print, same run.

The tree is a copy of the running environment's site-packages (a few thousand real files), so
both sides read the same files with the same number of processes. Reported: files/s of each,
the ratio scaffold / bare LibCST (target: at most 0.1, since a file no codemod can match is
never parsed), `ruff check` of the same tree as the floor, and how many files each gate let
through (counted by a second, untimed run through the library API).

Also measured in the same run: what parsing the files that reach LibCST whole would cost,
beside the share of their bytes slicing gives LibCST, and the floor of the interpreter
starting with scaffold's imports (``scaffold --version``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import libcst as cst

from scaffold.api import Options, run
from scaffold.codemods import all_codemods
from scaffold.engine import RunResult, Settings, runner

TARGET_RATIO = 0.1


def _parse_and_print(path: str) -> bool:
    try:
        data = Path(path).read_bytes()
        return cst.parse_module(data).bytes == data
    except Exception:  # the baseline skips what LibCST cannot parse, as scaffold does
        return False


def bare_libcst(files: list[str], jobs: int) -> float:
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(_parse_and_print, files, chunksize=max(1, len(files) // (jobs * 8))))
    return time.perf_counter() - started


def scaffold_check(tree: Path, jobs: int) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "scaffold", "retrofit", "--check", "--jobs", str(jobs),
         "--format", "json", str(tree)],
        capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"scaffold retrofit failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, done.returncode


def gate_counts(tree: Path, jobs: int) -> RunResult:
    """The same run through the library: how far each file got, and what was found."""
    return run([tree], all_codemods(), Options(write=False, jobs=jobs))


def sliced_share(paths: list[str]) -> float:
    """The share of these files' bytes LibCST is given once slicing has left out what no
    active codemod can act on (``scaffold.engine.slicing``), as the run itself slices them."""
    rules, settings = all_codemods(), Settings()
    whole = given = 0
    for path in paths:
        source = Path(path).read_bytes()
        whole += len(source)
        given += len(runner.libcst_input(source, rules, settings) or source)
    return given / whole if whole else 1.0


def start_up() -> float:
    """Seconds for the interpreter to start with scaffold imported and exit (best of three)."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "scaffold", "--version"], capture_output=True,
                       check=True)
        times.append(time.perf_counter() - started)
    return min(times)


def ruff_check(tree: Path) -> float | None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        return None
    started = time.perf_counter()
    subprocess.run([ruff, "check", "--no-cache", "--exit-zero", "--quiet", str(tree)],
                   capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    jobs = os.cpu_count() or 1
    source = Path(sysconfig.get_paths()["purelib"])
    with tempfile.TemporaryDirectory(prefix="scaffold-bench-") as folder:
        tree = Path(folder) / "tree"
        shutil.copytree(source, tree, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))
        files = sorted(str(p) for p in tree.rglob("*.py") if p.is_file())
        baseline = bare_libcst(files, jobs)
        ours, _ = scaffold_check(tree, jobs)
        ruff = ruff_check(tree)
        counted = gate_counts(tree, jobs)
        whole_parse = bare_libcst(list(counted.gates.parsed), jobs)
        share = sliced_share(list(counted.gates.parsed))
        start_floor = start_up()
    ratio = ours / baseline
    gates = counted.gates
    print(f"retrofit_speed: {len(files)} files from {source} with {jobs} processes")
    print(f"  bare LibCST parse+print: {baseline:7.2f} s  {len(files) / baseline:8.0f} files/s")
    print(f"  scaffold retrofit --check: {ours:5.2f} s  {len(files) / ours:8.0f} files/s")
    if ruff is not None:
        print(f"  ruff check (floor):      {ruff:7.2f} s  {len(files) / ruff:8.0f} files/s")
    print(f"  gates: {gates.files} Python files looked at, {gates.text} passed a text "
          f"prefilter, {gates.syntax} passed a syntax gate (parsed by LibCST); "
          f"{len(counted.changed)} would change, {len(counted.findings)} sites reported")
    print(f"  slicing: LibCST is given {share:.0%} of the bytes of the {len(gates.parsed)} "
          f"files that reach it; parsing them whole would take {whole_parse / baseline:.3f} of "
          f"the baseline ({whole_parse:.2f} s)")
    print(f"  floor, as a share of the bare LibCST time: starting the interpreter with scaffold "
          f"imported {start_floor / baseline:.3f} ({start_floor:.2f} s)")
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(f"  ratio scaffold / LibCST: {ratio:.3f} ({verdict} the {TARGET_RATIO} target)")


if __name__ == "__main__":
    main()
