"""``scaffold rules``: every codemod and check with its id, kind, fix safety and summary."""

from __future__ import annotations

import argparse
import json
import sys

from scaffold import api
from scaffold.errors import UsageError

NAME = "rules"
HELP = "list every codemod and check (id, kind, fix safety, summary)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                        help="output format (default: text; markdown is the README's catalogue)")
    parser.add_argument("--explain", metavar="ID", help="print one rule's full documentation")


def run(args: argparse.Namespace) -> int:
    table = api.rules()
    if args.explain:
        match = [rule for rule in table if rule["id"] == args.explain]
        if not match:
            raise UsageError(f"unknown rule {args.explain!r}; run 'scaffold rules' for ids")
        print(f"{match[0]['id']} ({match[0]['kind']}, fix safety: {match[0]['fix_safety']})\n")
        print(match[0]["help"])
        return 0
    if args.format == "json":
        json.dump(table, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if args.format == "markdown":
        sys.stdout.write(rules_markdown(table))
        return 0
    width = max(len(rule["id"]) for rule in table)
    print(f"{'ID':<{width}}  {'KIND':<7}  {'FIX':<6}  SUMMARY")
    for rule in table:
        print(f"{rule['id']:<{width}}  {rule['kind']:<7}  {rule['fix_safety']:<6}  "
              f"{rule['summary']}")
    return 0


def rules_markdown(table: list[dict]) -> str:
    """The catalogue as the README shows it; a test keeps the README's copy current."""
    lines = ["| id | kind | fix safety | summary |", "|---|---|---|---|"]
    for rule in table:
        summary = rule["summary"].replace("``", "`").replace("|", "\\|")
        lines.append(f"| `{rule['id']}` | {rule['kind']} | {rule['fix_safety']} | {summary} |")
    return "\n".join(lines) + "\n"
