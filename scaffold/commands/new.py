"""``scaffold new DEST``: generate a traced service from the Copier template."""

from __future__ import annotations

import argparse

from scaffold import api
from scaffold.errors import UsageError

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
    data = {}
    for item in args.data:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--data needs KEY=VALUE, got '{item}'")
        data[key] = value
    api.new_service(args.dest, data=data, defaults=args.defaults, vcs_ref=args.vcs_ref)
    return 0
