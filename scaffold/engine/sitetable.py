"""The site table: every propagation site the rules saw, by service, and how it stands.

OpenRewrite's data tables, for trace context. Rules record sites through the channel they
report changes and findings in (``Codemod.record_site``, ``Check.record_site``; a change's
site is ``fixable``, a finding's ``reported``, both of the rule's ``SITE_KIND``); the engine
puts them in ``FileResult.sites``. This module turns a run's results into rows with the
service each file belongs to (its nearest project folder, as ``scaffold.repo.packaging``
finds it), counts them per service and kind, and renders text, json, csv or one
self-contained HTML page (``scaffold report``; retrofit's ``--format json`` carries the same
rows under ``site_table``).
"""

from __future__ import annotations

import csv
import html
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from scaffold.engine.model import FileResult, Finding, Kind, Site, SiteKind, SiteStatus
from scaffold.repo import PROJECT_FILES, Packaging

TABLE_FORMATS = ("text", "json", "csv", "html")
STATUSES = tuple(SiteStatus)
# the statuses of sites that carry the context (after this run)
CARRYING = (SiteStatus.CORRECT, SiteStatus.FIXED)
COLUMNS = ("service", "path", "line", "column", "kind", "rule_id", "status", "reason")


# -- what the runner calls --


def sites_of(findings: Iterable[Finding], rules: Iterable[Any]) -> list[Site]:
    """The sites of changes (``fixable``) and findings (``reported``, the message as reason)
    of rules that declare a ``SITE_KIND``."""
    kinds = {rule.ID: getattr(rule, "SITE_KIND", None) for rule in rules}
    sites = []
    for finding in findings:
        declared = kinds.get(finding.rule_id)
        if declared is None:
            continue
        kind = SiteKind(declared)
        status = SiteStatus.FIXABLE if finding.kind is Kind.CHANGE else SiteStatus.REPORTED
        sites.append(Site(finding.path, finding.line, finding.column, kind, finding.rule_id,
                          status, finding.message))
    return sites


def out_of_scope(sites: Iterable[Site], reason: str) -> tuple[Site, ...]:
    """``sites`` as skipped for ``reason``, saying what each would be in scope."""
    return tuple(sorted(
        replace(site, status=SiteStatus.SKIPPED,
                reason=f"{reason} (in scope: {site.status.value})")
        for site in sites))


def fixed(sites: Iterable[Site]) -> tuple[Site, ...]:
    """``sites`` after a run wrote their file: what was fixable is fixed."""
    return tuple(replace(site, status=SiteStatus.FIXED) if site.status is SiteStatus.FIXABLE
                 else site for site in sites)


# -- the table --


@dataclass(frozen=True, order=True)
class Row:
    """One site and the service it belongs to."""

    service: str
    site: Site

    def as_dict(self) -> dict[str, Any]:
        site = self.site
        return {"service": self.service, "path": site.path, "line": site.line,
                "column": site.column, "kind": site.kind.value, "rule_id": site.rule_id,
                "status": site.status.value, "reason": site.reason}


@dataclass(frozen=True)
class Counts:
    """How the sites of one kind stand, in one service (or all of them)."""

    kind: SiteKind
    by_status: Mapping[SiteStatus, int]

    @property
    def in_scope(self) -> int:
        return sum(n for status, n in self.by_status.items() if status is not SiteStatus.SKIPPED)

    @property
    def carrying(self) -> int:
        return sum(self.by_status.get(status, 0) for status in CARRYING)

    def sentence(self) -> str:
        """``12/14 Kafka sends carry context`` (plus what is fixable, reported, skipped):
        of the sites in scope, how many carry context now (tokens: are always detached,
        tracing set-ups: set tracing up)."""
        text = f"{self.carrying}/{self.in_scope} {self.kind.label} {self.kind.verb}"
        rest = [f"{self.by_status[status]} {status.value}" for status in
                (SiteStatus.FIXABLE, SiteStatus.REPORTED, SiteStatus.SKIPPED)
                if self.by_status.get(status)]
        return text + (f" ({', '.join(rest)})" if rest else "")

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "in_scope": self.in_scope, "carrying": self.carrying,
                **{status.value: self.by_status.get(status, 0) for status in STATUSES},
                "summary": self.sentence()}


def _counts(rows: Iterable[Row]) -> list[Counts]:
    by_kind: dict[SiteKind, Counter[SiteStatus]] = {}
    for row in rows:
        by_kind.setdefault(row.site.kind, Counter())[row.site.status] += 1
    return [Counts(kind, dict(by_kind[kind])) for kind in SiteKind if kind in by_kind]


@dataclass(frozen=True)
class SiteTable:
    """Every row, sorted by service, path and line; counts per service and overall."""

    rows: tuple[Row, ...]
    files: int = 0  # files looked at
    failed: tuple[str, ...] = ()  # files that could not be processed (their sites are unknown)
    root: str = ""  # the folder services are named from (the page shows paths below it)

    @property
    def services(self) -> list[str]:
        return sorted({row.service for row in self.rows})

    def rows_of(self, service: str) -> list[Row]:
        return [row for row in self.rows if row.service == service]

    def counts(self, service: str | None = None) -> list[Counts]:
        """Per kind, for ``service`` (None: every service)."""
        return _counts(self.rows if service is None else self.rows_of(service))

    @property
    def open(self) -> int:
        """Sites not carrying context that are in scope: fixable or reported."""
        return sum(row.site.status in (SiteStatus.FIXABLE, SiteStatus.REPORTED)
                   for row in self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "failed": list(self.failed),
            "rows": [row.as_dict() for row in self.rows],
            "summary": {
                "services": [{"service": service,
                              "kinds": [c.as_dict() for c in self.counts(service)]}
                             for service in self.services],
                "total": [c.as_dict() for c in self.counts()],
            },
        }


class Services:
    """The service a file belongs to: its nearest project folder (``pyproject.toml``,
    ``setup.py``, ``setup.cfg``) below the root, relative to it. For a file of the root's own
    project (or of none): the folder it is in whose siblings are projects (a service without
    metadata among services with it), else the top-level package it is imported as, else its
    first folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self._packaging = Packaging(self.root)
        self._among_projects: dict[Path, bool] = {}

    def of(self, path: str | os.PathLike[str]) -> str:
        absolute = Path(os.path.abspath(path))
        project = self._packaging.project_of(absolute)
        if project is not None and project != self.root and project.is_relative_to(self.root):
            return project.relative_to(self.root).as_posix()
        if absolute.is_relative_to(self.root):
            for folder in reversed(absolute.parents):
                if folder.is_relative_to(self.root) and folder != self.root and (
                        self._beside_projects(folder)):
                    return folder.relative_to(self.root).as_posix()
        module = self._packaging.module_of(absolute)
        if module and "." in module:
            return module.split(".")[0]
        if absolute.is_relative_to(self.root):
            parts = absolute.relative_to(self.root).parts
            if len(parts) > 1:
                return parts[0]
        return self.root.name or "."


    def _beside_projects(self, folder: Path) -> bool:
        parent = folder.parent
        if parent not in self._among_projects:
            self._among_projects[parent] = any(
                sibling.is_dir() and any((sibling / name).is_file() for name in PROJECT_FILES)
                for sibling in parent.iterdir()) if parent.is_dir() else False
        return self._among_projects[parent]


def site_table(results: Iterable[FileResult], root: str | os.PathLike[str]) -> SiteTable:
    """The table of a run's results; services are read under ``root`` (the repo's folder)."""
    services = Services(Path(root))
    results = list(results)
    rows = sorted(Row(services.of(site.path), site) for result in results
                  for site in result.sites)
    failed = tuple(result.path for result in results if result.status.value == "failed")
    return SiteTable(tuple(rows), files=len(results), failed=failed, root=str(services.root))


def root_of(paths: Sequence[str | os.PathLike[str]]) -> Path:
    """The folder services are named from: the folder given, or the one holding them all."""
    folders = [Path(os.path.abspath(p)) for p in paths]
    folders = [p if p.is_dir() else p.parent for p in folders]
    return Path(os.path.commonpath(folders)) if folders else Path.cwd()


# -- rendering --


def write_table(table: SiteTable, fmt: str, out: TextIO, *, title: str = "") -> None:
    """Print ``table`` in ``fmt`` (one of TABLE_FORMATS)."""
    if fmt == "text":
        _text(table, out)
    elif fmt == "json":
        import json

        json.dump(table.as_dict(), out, indent=2)
        out.write("\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(row.as_dict() for row in table.rows)
    elif fmt == "html":
        out.write(html_page(table, title=title))
    else:
        raise ValueError(f"unknown format {fmt!r}")


def _text(table: SiteTable, out: TextIO) -> None:
    for service in table.services:
        out.write(f"{service}\n")
        for row in table.rows_of(service):
            site = row.site
            reason = f": {site.reason}" if site.reason and site.status in (
                SiteStatus.REPORTED, SiteStatus.SKIPPED) else ""
            out.write(f"  {site.path}:{site.line}:{site.column}: {site.kind.value} "
                      f"{site.rule_id} {site.status.value}{reason}\n")
        for counts in table.counts(service):
            out.write(f"  = {counts.sentence()}\n")
    out.write("total\n")
    for counts in table.counts():
        out.write(f"  = {counts.sentence()}\n")
    for path in table.failed:
        out.write(f"{path}: could not be processed: its sites are not listed\n")
    out.write(f"{len(table.rows)} sites in {len(table.services)} services "
              f"({table.files} files looked at)\n")


_COLOURS = {
    SiteStatus.CORRECT: "#2e7d32",
    SiteStatus.FIXED: "#66bb6a",
    SiteStatus.FIXABLE: "#1565c0",
    SiteStatus.REPORTED: "#ef6c00",
    SiteStatus.SKIPPED: "#9e9e9e",
}

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a1a1a;
  margin: 24px auto; max-width: 1200px; padding: 0 16px; background: #fafafa; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; }
p.lead { color: #555; margin: 0 0 16px; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i, td.status i { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 5px; vertical-align: baseline; }
table { border-collapse: collapse; width: 100%; background: #fff; margin-bottom: 8px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e4e4e4;
  vertical-align: top; }
th { background: #f0f0f0; font-weight: 600; }
td.where { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px;
  word-break: break-all; }
td.reason { color: #444; font-size: 13px; }
table.sites td:nth-child(2), table.sites td:nth-child(3), td.status { white-space: nowrap; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
table.counts td.label { width: 22%; } table.counts td.ratio { width: 16%; white-space: nowrap; }
table.counts td.bar { width: 36%; } th.n, td.n { text-align: right; width: 6%; }
table.counts + table.counts { margin-top: 14px; }
a { color: #0d47a1; text-decoration: none; }
.bar-track { display: flex; height: 14px; background: #eee; border-radius: 3px;
  overflow: hidden; }
.bar-track div { height: 100%; }
details { margin-bottom: 6px; } summary { cursor: pointer; color: #333; }
"""


def _bar(by_status: Mapping[SiteStatus, int], widest: int) -> str:
    total = sum(by_status.values())
    segments = "".join(
        f'<div class="seg-{status.value}" title="{by_status[status]} {status.value}" '
        f'style="width:{100 * by_status[status] / max(widest, 1):.2f}%;'
        f'background:{_COLOURS[status]}"></div>'
        for status in STATUSES if by_status.get(status))
    return f'<div class="bar-track" data-total="{total}">{segments}</div>'


def _shown(table: SiteTable) -> list[SiteStatus]:
    """The statuses some row has (a check run has no fixed sites: no empty column)."""
    present = {row.site.status for row in table.rows}
    return [status for status in STATUSES if status in present] or [SiteStatus.CORRECT]


def _status_cells(by_status: Mapping[SiteStatus, int], shown: Sequence[SiteStatus]) -> str:
    return "".join(f'<td class="n">{by_status.get(status, 0) or ""}</td>' for status in shown)


def _status_heads(shown: Sequence[SiteStatus]) -> str:
    return "".join(f'<th class="n">{status.value}</th>' for status in shown)


def _counts_table(counts: Sequence[Counts], shown: Sequence[SiteStatus]) -> str:
    widest = max((sum(c.by_status.values()) for c in counts), default=1)
    body = "".join(
        f'<tr data-kind="{c.kind.value}"><td class="label">{html.escape(c.kind.label)}</td>'
        f'<td class="ratio">{c.carrying}/{c.in_scope} {c.kind.verb}</td>'
        f'<td class="bar">{_bar(c.by_status, widest)}</td>'
        f"{_status_cells(c.by_status, shown)}</tr>"
        for c in counts)
    return (f'<table class="counts"><tr><th>kind</th><th>in scope</th><th>sites</th>'
            f"{_status_heads(shown)}</tr>{body}</table>")


def _services_table(table: SiteTable, shown: Sequence[SiteStatus]) -> str:
    """One line per service: all its sites, whatever their kind, as one bar."""
    totals = {service: Counter(row.site.status for row in table.rows_of(service))
              for service in table.services}
    widest = max((sum(c.values()) for c in totals.values()), default=1)
    body = []
    for service, by_status in totals.items():
        in_scope = sum(n for status, n in by_status.items() if status is not SiteStatus.SKIPPED)
        carrying = sum(by_status.get(status, 0) for status in CARRYING)
        body.append(
            f'<tr data-service="{html.escape(service)}">'
            f'<td class="label"><a href="#{_anchor(service)}">{html.escape(service)}</a></td>'
            f'<td class="ratio">{carrying}/{in_scope} correct or fixed</td>'
            f'<td class="bar">{_bar(by_status, widest)}</td>'
            f"{_status_cells(by_status, shown)}</tr>")
    return (f'<table class="counts"><tr><th>service</th><th>in scope</th><th>sites</th>'
            f"{_status_heads(shown)}</tr>{''.join(body)}</table>")


def _anchor(service: str) -> str:
    return "service-" + "".join(ch if ch.isalnum() else "-" for ch in service)


def _shown_path(path: str, root: str, service: str) -> str:
    """``path`` below ``root`` when it is there (the page names the root once), and below
    the service's folder when it is in it (the section names the service)."""
    if root and Path(os.path.abspath(path)).is_relative_to(root):
        path = Path(os.path.abspath(path)).relative_to(root).as_posix()
    return path.removeprefix(f"{service}/")


def _rows_table(rows: Sequence[Row], root: str) -> str:
    body = "".join(
        f'<tr data-status="{row.site.status.value}">'
        f'<td class="where">{html.escape(_shown_path(row.site.path, root, row.service))}:'
        f"{row.site.line}</td>"
        f"<td>{row.site.kind.value}</td><td>{html.escape(row.site.rule_id)}</td>"
        f'<td class="status"><i style="background:{_COLOURS[row.site.status]}"></i>'
        f"{row.site.status.value}</td>"
        f'<td class="reason">{html.escape(row.site.reason)}</td></tr>'
        for row in rows)
    return ("<table class=\"sites\"><tr><th>file:line</th><th>kind</th><th>rule</th>"
            f"<th>status</th><th>reason</th></tr>{body}</table>")


def _under(root: str) -> str:
    return f" under <code>{html.escape(root)}</code>" if root else ""


def html_page(table: SiteTable, *, title: str = "") -> str:
    """One self-contained page (inline CSS, no script, nothing fetched): overall counts per
    kind and per service, then per service its counts as bars and its sites (collapsed)."""
    heading = html.escape(f"Propagation sites{f' of {title}' if title else ''}")
    shown = _shown(table)
    legend = "".join(f'<span><i style="background:{_COLOURS[status]}"></i>{status.value}</span>'
                     for status in shown)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{heading}</title><style>{_CSS}</style></head><body>",
        f"<h1>{heading}</h1>",
        f'<p class="lead">{len(table.rows)} sites in {len(table.services)} services, '
        f"{table.files} files looked at{_under(table.root)}. A site carries context when it is "
        "correct or fixed; skipped sites are out of scope and not counted in the ratio. Within "
        "a service, paths are below its folder.</p>",
        f'<p class="legend">{legend}</p>',
        '<section class="service" data-service="(all)"><h2>All services</h2>',
        _counts_table(table.counts(), shown),
        _services_table(table, shown),
        "</section>",
    ]
    if table.failed:
        failed = "".join(f"<li>{html.escape(path)}</li>" for path in table.failed)
        parts.append(f"<h2>Files that could not be processed</h2><ul>{failed}</ul>")
    for service in table.services:
        rows = table.rows_of(service)
        parts += [
            f'<section class="service" data-service="{html.escape(service)}" '
            f'id="{_anchor(service)}">',
            f"<h2>{html.escape(service)}</h2>",
            _counts_table(table.counts(service), shown),
            f"<details><summary>{len(rows)} sites</summary>{_rows_table(rows, table.root)}"
            "</details>",
            "</section>",
        ]
    parts.append("</body></html>\n")
    return "\n".join(parts)
