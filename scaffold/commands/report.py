"""``scaffold report PATH...``: the site table, every propagation site and how it stands.

Runs every codemod and check as ``scaffold check`` does (it never writes; codemods visit test
files too, whose sites are listed as skipped unless include-tests, and files the config
excludes, skipped as well) and prints one row per site: service, file, line, kind, rule,
status (correct, fixable, reported or skipped, with the reason), then per service and kind a
summary ("12/14 Kafka sends carry context"). Exit 0 when every site in scope carries context,
1 when some are fixable or reported, 2 when a file could not be processed (or on a usage
error).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scaffold import api
from scaffold.commands._engine import add_engine_arguments, progress
from scaffold.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, UsageError

NAME = "report"
HELP = ("list every propagation site (Kafka, envelopes, HTTP, threads, queues, tokens, "
        "tracing set-up) per service with its status; never writes")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_engine_arguments(parser, formats=api.TABLE_FORMATS)
    parser.add_argument("--output", "-o", metavar="FILE", type=Path,
                        help="write the table to FILE instead of standard output")


def run(args: argparse.Namespace) -> int:
    with progress() as on_progress:
        done = api.report(args.paths, select=args.select, ignore=args.ignore, jobs=args.jobs,
                          include_tests=args.include_tests, on_progress=on_progress)
    table = done.table
    title = Path(table.root).name or table.root
    if args.output is None:
        api.write_table(table, args.format, sys.stdout, title=title)
    else:
        try:
            with open(args.output, "w", encoding="utf-8", newline="") as out:
                api.write_table(table, args.format, out, title=title)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    if done.result.failed:
        return EXIT_ERROR
    return EXIT_CHANGES if table.open else EXIT_OK
