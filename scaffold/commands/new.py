"""``scaffold new DEST``: generate a traced service from the Copier template."""

from __future__ import annotations

import argparse

from scaffold.cli import UsageError

NAME = "new"
HELP = (
    "generate a new traced service (the same as `copier copy --trust` of this template); "
    "later template versions reach it with `copier update`"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dest", metavar="DEST", help="folder to create (must be missing or empty)")
    parser.add_argument(
        "--data", "-d", action="append", default=[], metavar="KEY=VALUE",
        help="answer a question, e.g. --data service_name=grading_service (repeatable)",
    )
    parser.add_argument(
        "--defaults", action="store_true",
        help="take the default for every question not answered by --data (no prompts)",
    )
    parser.add_argument(
        "--vcs-ref", metavar="REF",
        help="template version (git tag or commit); default: the latest tag, else HEAD",
    )


def run(args: argparse.Namespace) -> int:
    # Copier is imported here, not at the top: every other command starts without it
    from scaffold.new_service import NewServiceError, create_service

    data = {}
    for item in args.data:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--data needs KEY=VALUE, got '{item}'")
        data[key] = value
    try:
        create_service(args.dest, data=data, defaults=args.defaults, vcs_ref=args.vcs_ref)
    except NewServiceError as exc:
        raise UsageError(str(exc)) from exc
    return 0
