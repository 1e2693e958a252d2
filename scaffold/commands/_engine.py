"""What ``scaffold retrofit`` and ``scaffold check`` share on the command line.

Both take PATH..., --select/--ignore/--jobs/--format, show a progress bar on a terminal,
print through the same reporters and exit with the same codes; each command module only adds
its own flags and calls its function of ``scaffold.api``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from scaffold.api import FORMATS, RunResult, write_report

if TYPE_CHECKING:  # rich is imported only when a bar is shown
    from rich.progress import Progress, TaskID


def _ids(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _jobs(value: str) -> int:
    try:
        jobs = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if jobs < 0:
        raise argparse.ArgumentTypeError("must be 0 (all cores) or more")
    return jobs


def add_engine_arguments(parser: argparse.ArgumentParser,
                         formats: Sequence[str] = FORMATS) -> None:
    """PATH... and the flags every engine command takes (``formats``: its --format choices)."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to process")
    parser.add_argument("--select", type=_ids, default=(), metavar="IDS",
                        help="comma-separated rule ids to run (default: all, or the config's)")
    parser.add_argument("--ignore", type=_ids, default=(), metavar="IDS",
                        help="comma-separated rule ids not to run")
    parser.add_argument("--jobs", type=_jobs, default=0, metavar="N",
                        help="processes to use (default: 0 = all cores)")
    parser.add_argument("--format", choices=formats, default="text",
                        help="output format (default: text)")
    parser.add_argument("--include-tests", action="store_true", default=None,
                        help="let codemods rewrite test files too (tests/, test_*.py, "
                             "*_test.py, conftest.py; default: the config's include-tests)")


def report(args: argparse.Namespace, result: RunResult, *, diff: bool = False) -> int:
    """Print ``result`` in the ``--format`` asked for; the exit code."""
    write_report(result, args.format, sys.stdout, diff=diff)
    return result.exit_code


class progress:
    """A transient rich progress bar on stderr when it is a terminal; nothing when piped."""

    def __init__(self) -> None:
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Callable[[int, int], None] | None:
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self._bar = Progress(
            "parsing", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(stderr=True), transient=True,
        )
        return self._update

    def _update(self, done: int, total: int) -> None:
        assert self._bar is not None  # __enter__ hands this out only with a bar
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task("files", total=total)
        self._bar.update(self._task, completed=done)

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.stop()
