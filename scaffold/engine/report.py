"""Reporters shared by ``scaffold retrofit`` and ``scaffold check``: text, json, sarif, github.

Rule metadata (id, summary, help text, fix safety) comes from the rule classes themselves, so
SARIF's rule table and ``scaffold rules`` never drift from the code.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any, TextIO
from urllib.parse import quote

from scaffold import __version__
from scaffold.engine.model import FileResult, Finding, Kind, Status
from scaffold.engine.rule import Rule, is_codemod
from scaffold.engine.runner import RunResult
from scaffold.engine.sitetable import root_of, site_table

FORMATS = ("text", "json", "sarif", "github")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
JSON_REPORT_VERSION = 1


def rule_info(rule: Rule) -> dict[str, str]:
    """What every reporter says about a rule, read from its class attributes."""
    return {
        "id": rule.ID,
        "kind": "codemod" if is_codemod(rule) else "check",
        "summary": rule.SUMMARY,
        "help": rule.help_text(),
        "fix_safety": rule.FIX_SAFETY,
    }


def unified_diff(result: FileResult) -> str:
    if result.original is None or result.updated is None:
        return ""
    return "".join(
        difflib.unified_diff(
            result.original.splitlines(keepends=True),
            result.updated.splitlines(keepends=True),
            fromfile=f"a/{result.path}",
            tofile=f"b/{result.path}",
        )
    )


def write_report(result: RunResult, fmt: str, out: TextIO, *, diff: bool = False) -> None:
    """Print ``result`` in ``fmt`` (one of FORMATS); ``diff`` adds unified diffs of changes."""
    if fmt == "text":
        _text(result, out, diff)
    elif fmt == "json":
        json.dump(_json(result, diff), out, indent=2)
        out.write("\n")
    elif fmt == "sarif":
        json.dump(sarif(result), out, indent=2)
        out.write("\n")
    elif fmt == "github":
        _github(result, out, diff)
    else:
        raise ValueError(f"unknown format {fmt!r}")


def _verb(result: RunResult, count: int) -> str:
    files = "file" if count == 1 else "files"
    return f"{count} {files} {'changed' if result.options.write else 'would change'}"


def _site_line(finding: Finding, write: bool) -> str:
    note = ""
    if finding.kind is Kind.CHANGE:
        note = " (fixed)" if write else " (fixable)"
    where = f"{finding.path}:{finding.line}:{finding.column}"
    return f"{where}: {finding.rule_id} {finding.message}{note}"


def _text(result: RunResult, out: TextIO, diff: bool) -> None:
    for file in result.results:
        if file.status is Status.FAILED:
            out.write(f"{file.path}: error: {file.reason}\n")
        elif file.status is Status.SKIPPED:
            out.write(f"{file.path}: skipped: {file.reason}\n")
        for finding in file.findings:
            out.write(_site_line(finding, result.options.write) + "\n")
    if diff:
        for file in result.changed:
            out.write(unified_diff(file))
    out.write(_summary(result) + "\n")


def _summary(result: RunResult) -> str:
    parts = []
    if result.changed:
        parts.append(_verb(result, len(result.changed)))
    findings = [f for f in result.findings if f.kind is Kind.FINDING]
    if findings:
        parts.append(f"{len(findings)} finding{'s' if len(findings) != 1 else ''}")
    if result.failed:
        parts.append(f"{len(result.failed)} file{'s' if len(result.failed) != 1 else ''} "
                     "could not be processed")
    if not parts:
        return f"nothing to change ({len(result.results)} files looked at)"
    return ", ".join(parts) + f" ({len(result.results)} files looked at)"


def _site(finding: Finding) -> dict[str, Any]:
    return {
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
        "end_line": finding.end_line,
        "end_column": finding.end_column,
        "rule_id": finding.rule_id,
        "kind": finding.kind.value,
        "message": finding.message,
    }


def _json(result: RunResult, diff: bool) -> dict[str, Any]:
    files = []
    for file in result.results:
        if file.status is Status.UNCHANGED and not file.findings:
            continue
        entry: dict[str, Any] = {"path": file.path, "status": file.status.value}
        if file.reason:
            entry["reason"] = file.reason
        if diff and file.status is Status.CHANGED:
            entry["diff"] = unified_diff(file)
        files.append(entry)
    sites = result.findings
    return {
        "version": JSON_REPORT_VERSION,
        "tool": {"name": "scaffold", "version": __version__},
        "mode": "write" if result.options.write else "check",
        "summary": {
            "files": len(result.results),
            "changed": len(result.changed),
            "failed": len(result.failed),
            "skipped": sum(1 for f in result.results if f.status is Status.SKIPPED),
            "changes": sum(1 for f in sites if f.kind is Kind.CHANGE),
            "findings": sum(1 for f in sites if f.kind is Kind.FINDING),
        },
        "exit_code": result.exit_code,
        "files": files,
        "sites": [_site(finding) for finding in sites],
        "rules": [rule_info(rule) for rule in result.rules],
        # the propagation sites, as `scaffold report --format json` lists them
        "site_table": site_table(result.results, root_of(
            result.paths or [file.path for file in result.results])).as_dict(),
    }


def _uri(path: str) -> str:
    pure = PurePath(path)
    if pure.is_absolute():
        return pure.as_uri()
    return quote(pure.as_posix())


def _region(finding: Finding) -> dict[str, int]:
    region = {"startLine": finding.line, "startColumn": finding.column}
    if finding.end_line:
        region["endLine"] = finding.end_line
    if finding.end_column:
        region["endColumn"] = finding.end_column
    return region


def sarif(result: RunResult) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one run, every rule's metadata, every change and finding."""
    rules = [rule_info(rule) for rule in result.rules]
    index = {rule["id"]: number for number, rule in enumerate(rules)}
    results = []
    for finding in result.findings:
        entry: dict[str, Any] = {
            "ruleId": finding.rule_id,
            "level": "warning" if finding.kind is Kind.FINDING or not result.options.write
            else "note",
            "message": {"text": finding.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(finding.path)},
                        "region": _region(finding),
                    }
                }
            ],
            "properties": {"kind": finding.kind.value},
        }
        if finding.rule_id in index:
            entry["ruleIndex"] = index[finding.rule_id]
        results.append(entry)
    notifications = [
        {
            "level": "error" if file.status is Status.FAILED else "note",
            "message": {"text": f"{file.status.value}: {file.reason}"},
            "locations": [
                {"physicalLocation": {"artifactLocation": {"uri": _uri(file.path)}}}
            ],
        }
        for file in result.results
        if file.status in (Status.FAILED, Status.SKIPPED)
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "scaffold",
                        "version": __version__,
                        "rules": [_sarif_rule(rule) for rule in rules],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "invocations": [
                    {
                        "executionSuccessful": not result.failed,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
            }
        ],
    }


def _sarif_rule(rule: dict[str, str]) -> dict[str, Any]:
    return {
        "id": rule["id"],
        "name": "".join(part.capitalize() for part in rule["id"].split("-")),
        "shortDescription": {"text": rule["summary"]},
        "fullDescription": {"text": rule["help"].split("\n\n", 1)[0]},
        "help": {"text": rule["help"], "markdown": rule["help"]},
        "defaultConfiguration": {"level": "warning"},
        "properties": {"kind": rule["kind"], "fixSafety": rule["fix_safety"]},
    }


def _escape(text: str, *, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def _github(result: RunResult, out: TextIO, diff: bool) -> None:
    """GitHub Actions workflow commands: one annotation per site, an error per failed file."""
    for file in result.results:
        where = _escape(file.path, property_value=True)
        if file.status is Status.FAILED:
            out.write(f"::error file={where}::{_escape(file.reason or 'failed')}\n")
        for finding in file.findings:
            props = (
                f"file={where},line={finding.line},col={finding.column}"
                + (f",endLine={finding.end_line}" if finding.end_line else "")
                + f",title={_escape(finding.rule_id, property_value=True)}"
            )
            out.write(f"::warning {props}::{_escape(finding.message)}\n")
    if diff:
        for file in result.changed:
            out.write(unified_diff(file))


def rules_table(rules: Iterable[Rule]) -> list[dict[str, str]]:
    return [rule_info(rule) for rule in rules]
