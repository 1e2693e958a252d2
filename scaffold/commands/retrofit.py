"""``scaffold retrofit PATH...``: run the codemods, write the fixes (or show / check them)."""

from __future__ import annotations

import argparse
import sys

from scaffold.codemods import all_codemods
from scaffold.engine.command import add_engine_arguments, execute
from scaffold.engine.runner import Options

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
    options = Options(
        write=not (args.check or args.diff),
        select=args.select,
        ignore=args.ignore,
        jobs=args.jobs,
        unsafe_fixes=args.unsafe_fixes,
        include_tests=args.include_tests,
        generate_tests=not args.no_tests,
        vendor_kit=True,
        force=args.force,
        add_dependencies=not args.no_deps,
        findings_fail=False,
    )
    exit_code = execute(args, all_codemods(), options, diff=args.diff).exit_code
    if options.write and options.generate_tests:
        _write_tests(args)
    return exit_code


def _write_tests(args: argparse.Namespace) -> None:
    """After a write run: the tests proving the retrofit (summary on stderr under --format)."""
    from scaffold.testgen import generate_for

    out = sys.stdout if args.format == "text" else sys.stderr
    for generated in generate_for(args.paths):
        print(generated.summary(), file=out)
