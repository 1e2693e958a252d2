"""`make bench`: run every benchmark script in its own process and print what each reports.

A benchmark is any ``benchmarks/*.py`` with a ``main()`` that prints its own figures, except
this file, ``corpus.py`` (``make corpus``) and files starting with ``_``. Each runs in a fresh
interpreter so one benchmark's imports, threads or global tracer provider cannot skew another.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXCLUDED = {Path(__file__).name, "corpus.py"}


def benchmark_scripts() -> list[Path]:
    """The scripts ``make bench`` runs, in name order."""
    return sorted(
        path for path in HERE.glob("*.py")
        if path.name not in EXCLUDED and not path.name.startswith("_")
    )


def main() -> int:
    failed = []
    for script in benchmark_scripts():
        print(f"== {script.name}", flush=True)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, str(script)], cwd=HERE.parent)
        print(f"== {script.name}: exit {result.returncode} after "
              f"{time.perf_counter() - started:.0f} s\n", flush=True)
        if result.returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
