"""Command line: parse, call the library, print, exit. ``main(argv) -> int`` for in-process tests.

Each subcommand is one module in ``scaffold.commands`` exposing ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; this file only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from scaffold import __version__, commands
from scaffold.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, UsageError

__all__ = ["EXIT_CHANGES", "EXIT_ERROR", "EXIT_OK", "UsageError", "build_parser", "entry", "main"]


def _command_modules() -> list:
    found = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        found.append(importlib.import_module(f"{commands.__name__}.{info.name}"))
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaffold",
        description=(
            "Correct-by-construction distributed tracing for async Python services: "
            "generate new services, retrofit existing ones, check for tracing mistakes."
        ),
    )
    parser.add_argument("--version", action="version", version=f"scaffold {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks for unexpected errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        sub_parser = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_OK
    try:
        return int(args._run(args))
    except UsageError as exc:
        print(f"scaffold: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("scaffold: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: one line unless --debug
        if args.debug:
            raise
        print(f"scaffold: internal error: {exc!r} (rerun with --debug for a traceback)",
              file=sys.stderr)
        return EXIT_ERROR


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
