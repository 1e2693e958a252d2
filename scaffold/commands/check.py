"""``scaffold check PATH...``: report tracing mistakes, including every rewrite retrofit would make.

Lint-only checks (``scaffold.checks``) report what has no safe fix; the codemods run as in
``scaffold retrofit --check`` so one command shows everything. It never writes. Discovery,
``[tool.scaffold]``, ``# scaffold: ignore[ID]``, output formats and exit codes are retrofit's.
"""

from __future__ import annotations

import argparse

from scaffold import api
from scaffold.commands._engine import add_engine_arguments, progress, report

NAME = "check"
HELP = (
    "report tracing mistakes that have no safe fix, and every rewrite 'scaffold retrofit' "
    "would make; never writes (exit 1 when anything is found)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_engine_arguments(parser)


def run(args: argparse.Namespace) -> int:
    with progress() as on_progress:
        result = api.check(args.paths, select=args.select, ignore=args.ignore, jobs=args.jobs,
                           include_tests=args.include_tests, on_progress=on_progress)
    return report(args, result)
