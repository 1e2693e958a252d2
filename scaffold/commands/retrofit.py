"""``scaffold retrofit PATH...``: run the codemods, write the fixes (or show / check them)."""

from __future__ import annotations

import argparse
import sys

from scaffold import api
from scaffold.commands._engine import add_engine_arguments, progress, report

NAME = "retrofit"
HELP = "rewrite a repo so its tracing is correct (see 'scaffold rules' for what changes)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_engine_arguments(parser)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when anything would change")
    parser.add_argument("--diff", action="store_true",
                        help="write nothing; print a unified diff of what would change")
    parser.add_argument("--unsafe-fixes", action="store_true", default=None,
                        help="also apply codemods whose fix safety is 'unsafe'")
    parser.add_argument("--no-tests", action="store_true",
                        help="do not generate the tests that prove the retrofit")
    parser.add_argument("--no-deps", action="store_true",
                        help="do not add what the rewritten code imports to the project's "
                             "declared dependencies; report it instead")
    parser.add_argument("--force", action="store_true",
                        help="overwrite a vendored kit even if it was edited by hand")


def run(args: argparse.Namespace) -> int:
    write = not (args.check or args.diff)
    with progress() as on_progress:
        done = api.retrofit(
            args.paths, write=write, select=args.select, ignore=args.ignore, jobs=args.jobs,
            unsafe_fixes=args.unsafe_fixes, include_tests=args.include_tests, force=args.force,
            add_dependencies=not args.no_deps, generate_tests=not args.no_tests,
            on_progress=on_progress,
        )
    exit_code = report(args, done.result, diff=args.diff)
    # the tests proving the retrofit (summary on stderr under --format, stdout stays the report)
    out = sys.stdout if args.format == "text" else sys.stderr
    for generated in done.tests:
        print(generated.summary(), file=out)
    return exit_code
