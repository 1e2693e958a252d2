"""The site table: ``scaffold report`` and retrofit's json ``site_table`` on small fleets.

A fixture fleet of two services holds a site of every status: ``correct`` (a token a finally
detaches, an injected request, a thread run in a copied context), ``fixable`` (an unguarded
token, a request to an internal host, a bare thread), ``reported`` (a token nothing can
detach) and ``skipped`` (a suppressed site, a test file, a third party's host).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path
from textwrap import dedent

import pytest

from scaffold.cli import main
from scaffold.engine import Options, run
from scaffold.engine.model import FileResult, Site, SiteKind, SiteStatus, Status
from scaffold.engine.sitetable import COLUMNS, Services, html_page, site_table

TOKENS = '''
from opentelemetry import context


def unguarded(ctx):
    token = context.attach(ctx)
    work()
    context.detach(token)


def guarded(ctx):
    token = context.attach(ctx)
    try:
        work()
    finally:
        context.detach(token)


def before_request(ctx):
    context.attach(ctx)


def silenced(ctx):
    token = context.attach(ctx)  # scaffold: ignore[token-finally]
    work()
    context.detach(token)


def work():
    pass
'''

TEST_TOKENS = '''
from opentelemetry import context


def test_attach(ctx=None):
    token = context.attach(ctx)
    context.detach(token)
'''

CALLS = '''
import contextvars
import threading

import httpx
from opentelemetry.propagate import inject


async def charge(payload):
    async with httpx.AsyncClient() as client:
        await client.post("https://api.stripe.com/v1/charges", json=payload)
        await client.post("http://ledger_service/entries", json=payload)
        headers = {}
        inject(headers)
        await client.post("http://ledger_service/audit", json=payload, headers=headers)


def hand_off(fn):
    threading.Thread(target=fn).start()
    threading.Thread(target=contextvars.copy_context().run, args=(fn,)).start()
'''

CORRECT_ONLY = '''
from opentelemetry import context


def guarded(ctx):
    token = context.attach(ctx)
    try:
        pass
    finally:
        context.detach(token)
'''


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text).lstrip("\n"))
    return root


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    return _write(tmp_path / "fleet", {
        "pyproject.toml": '[project]\nname = "fleet"\n',
        "services/orders/pyproject.toml": '[project]\nname = "orders"\n',
        "services/orders/orders/__init__.py": "",
        "services/orders/orders/tokens.py": TOKENS,
        "services/orders/tests/test_tokens.py": TEST_TOKENS,
        "services/billing/pyproject.toml": '[project]\nname = "billing"\n',
        "services/billing/billing/__init__.py": "",
        "services/billing/billing/calls.py": CALLS,
    })


def _report(capsys, *args: str) -> tuple[int, str]:
    code = main(["report", "--jobs", "1", *args])
    return code, capsys.readouterr().out


def _rows(capsys, fleet: Path) -> list[dict]:
    code, out = _report(capsys, "--format", "json", str(fleet))
    assert code == 1
    return json.loads(out)["rows"]


def _brief(rows: list[dict]) -> list[tuple]:
    return [(row["service"], Path(row["path"]).name, row["line"], row["kind"], row["status"])
            for row in rows]


def test_every_status_is_a_row_with_its_service(fleet, capsys):
    rows = _rows(capsys, fleet)
    assert _brief(rows) == [
        ("services/billing", "calls.py", 10, "http-call", "skipped"),  # a third party's host
        ("services/billing", "calls.py", 11, "http-call", "fixable"),
        ("services/billing", "calls.py", 14, "http-call", "correct"),  # injected before
        ("services/billing", "calls.py", 18, "thread-hand-off", "fixable"),
        ("services/billing", "calls.py", 19, "thread-hand-off", "correct"),  # copied context
        ("services/orders", "tokens.py", 5, "context-token", "fixable"),
        ("services/orders", "tokens.py", 11, "context-token", "correct"),  # finally detaches
        ("services/orders", "tokens.py", 19, "context-token", "reported"),
        ("services/orders", "tokens.py", 23, "context-token", "skipped"),  # suppressed
        ("services/orders", "test_tokens.py", 5, "context-token", "skipped"),  # test code
    ]
    reasons = {(Path(row["path"]).name, row["line"]): row["reason"] for row in rows}
    assert "third party" in reasons[("calls.py", 10)]
    assert "discarded" in reasons[("tokens.py", 19)]
    assert "scaffold: ignore" in reasons[("tokens.py", 23)]
    assert reasons[("test_tokens.py", 5)].startswith("test file")
    assert {row["rule_id"] for row in rows} == {"http-inject", "thread-context", "token-finally"}


def test_the_summary_counts_per_service_and_kind(fleet, capsys):
    code, out = _report(capsys, "--format", "json", str(fleet))
    summary = json.loads(out)["summary"]
    assert (json.loads(out)["files"], json.loads(out)["failed"]) == (12, [])
    orders = next(s for s in summary["services"] if s["service"] == "services/orders")
    (tokens,) = orders["kinds"]
    assert (tokens["kind"], tokens["correct"], tokens["fixable"], tokens["reported"],
            tokens["skipped"], tokens["in_scope"], tokens["carrying"]) == (
        "context-token", 1, 1, 1, 2, 3, 1)
    assert tokens["summary"] == (
        "1/3 context tokens are always detached (1 fixable, 1 reported, 2 skipped)")
    assert [(k["kind"], k["carrying"], k["in_scope"]) for k in summary["total"]] == [
        ("http-call", 1, 2), ("thread-hand-off", 1, 2), ("context-token", 1, 3)]
    code, text = _report(capsys, str(fleet))
    assert "  = 1/2 HTTP calls carry context (1 fixable, 1 skipped)" in text
    assert text.splitlines()[-1].startswith("10 sites in 2 services")


def test_csv_has_a_header_and_the_json_rows(fleet, capsys):
    rows = _rows(capsys, fleet)
    code, out = _report(capsys, "--format", "csv", str(fleet))
    assert code == 1
    table = list(csv.DictReader(io.StringIO(out)))
    assert tuple(table[0]) == COLUMNS
    assert table == [{key: str(value) for key, value in row.items()} for row in rows]


def test_exit_codes_and_output_file(tmp_path, fleet, capsys):
    clean = _write(tmp_path / "clean", {"svc.py": CORRECT_ONLY})
    code, out = _report(capsys, str(clean))
    assert code == 0 and "1/1 context tokens are always detached" in out
    assert _report(capsys, str(tmp_path / "missing"))[0] == 2
    broken = _write(tmp_path / "broken", {"svc.py": "from opentelemetry import context\n"
                                                    "context.attach(\n"})
    assert _report(capsys, str(broken))[0] == 2
    target = tmp_path / "out" / "table.json"
    target.parent.mkdir()
    code, out = _report(capsys, "--format", "json", "--output", str(target), str(fleet))
    assert (code, out) == (1, "")
    assert len(json.loads(target.read_text())["rows"]) == 10
    with pytest.raises(SystemExit):  # argparse: not a table format
        main(["report", "--format", "sarif", str(fleet)])


def test_report_writes_nothing(fleet, capsys):
    before = {path: path.read_bytes() for path in fleet.rglob("*.py")}
    _report(capsys, str(fleet))
    assert {path: path.read_bytes() for path in fleet.rglob("*.py")} == before


def test_retrofit_json_carries_the_same_rows(fleet, capsys):
    """Retrofit's json keeps its shape ('sites' are its findings) and adds 'site_table'; test
    files are not visited by its codemods, and a write run's fixable sites are fixed."""
    report_rows = _rows(capsys, fleet)
    assert main(["retrofit", "--check", "--jobs", "1", "--format", "json", str(fleet)]) == 1
    checked = json.loads(capsys.readouterr().out)
    assert {"version", "summary", "files", "sites", "rules"} <= set(checked)
    assert all("message" in site for site in checked["sites"])
    in_scope = [row for row in report_rows if not row["reason"].startswith("test file")]
    assert checked["site_table"]["rows"] == in_scope
    assert main(["retrofit", "--no-tests", "--jobs", "1", "--format", "json", str(fleet)]) == 1
    written = json.loads(capsys.readouterr().out)["site_table"]["rows"]
    assert [row["status"] for row in written] == [
        "fixed" if row["status"] == "fixable" else row["status"] for row in in_scope]
    after = _rows(capsys, fleet)  # now the fixed ones are correct sites
    assert [(row["kind"], row["status"]) for row in after
            if Path(row["path"]).name in ("tokens.py", "calls.py")] == [
        ("http-call", "skipped"), ("http-call", "correct"), ("http-call", "correct"),
        ("thread-hand-off", "correct"), ("thread-hand-off", "correct"),  # the kit's thread
        ("context-token", "correct"), ("context-token", "correct"),
        ("context-token", "reported"), ("context-token", "skipped")]


def test_files_the_config_excludes_are_listed_as_skipped(fleet, capsys):
    (fleet / "pyproject.toml").write_text(
        '[project]\nname = "fleet"\n\n[tool.scaffold]\nexclude = ["services/billing/**"]\n')
    rows = _rows(capsys, fleet)
    billing = [row for row in rows if row["service"] == "services/billing"]
    assert len(billing) == 5 and {row["status"] for row in billing} == {"skipped"}
    assert all(row["reason"].startswith("excluded by 'exclude' in [tool.scaffold]")
               for row in billing)
    assert "(in scope: fixable)" in billing[1]["reason"]
    assert main(["retrofit", "--check", "--jobs", "1", "--format", "json", str(fleet)]) == 1
    checked = json.loads(capsys.readouterr().out)
    assert not [row for row in checked["site_table"]["rows"]
                if row["service"] == "services/billing"]


def test_a_service_is_the_nearest_project_below_the_root_or_the_top_package(tmp_path):
    root = _write(tmp_path / "mono", {
        "pyproject.toml": "[project]\nname = 'mono'\n",
        "libs/shared/pyproject.toml": "[project]\nname = 'shared'\n",
        "libs/shared/shared/__init__.py": "",
        "libs/shared/shared/bus.py": "",
        "libs/bare/bare/__init__.py": "",  # no metadata, among projects: a service too
        "libs/bare/bare/client.py": "",
        "app/__init__.py": "",
        "app/main.py": "",
        "script.py": "",
    })
    services = Services(root)
    assert services.of(root / "libs/shared/shared/bus.py") == "libs/shared"
    assert services.of(root / "libs/bare/bare/client.py") == "libs/bare"
    assert services.of(root / "app/main.py") == "app"
    assert services.of(root / "script.py") == "mono"


def test_run_result_sites_come_through_the_library_api(fleet):
    result = run([fleet], __import__("scaffold.codemods").codemods.all_codemods(),
                 Options(jobs=1, all_sites=True))
    kinds = {site.kind for site in result.sites}
    assert kinds == {SiteKind.HTTP_CALL, SiteKind.THREAD_HANDOFF, SiteKind.CONTEXT_TOKEN}
    assert all(isinstance(site, Site) for site in result.sites)


# -- the page --


def _table():
    sites = [
        Site("svc/a.py", 3, 1, SiteKind.KAFKA_PRODUCE, "kafka-produce", SiteStatus.CORRECT),
        Site("svc/a.py", 9, 1, SiteKind.KAFKA_PRODUCE, "kafka-produce", SiteStatus.FIXABLE,
             "send now runs in a PRODUCER span"),
        Site("svc/b.py", 4, 1, SiteKind.HTTP_CALL, "http-inject", SiteStatus.REPORTED,
             "headers come from `<shared>` & co"),
    ]
    return site_table([FileResult("svc/a.py", Status.UNCHANGED, sites=tuple(sites[:2])),
                       FileResult("svc/b.py", Status.UNCHANGED, sites=tuple(sites[2:]))],
                      Path("."))


def test_the_page_is_self_contained_and_escapes_what_it_shows():
    page = html_page(_table(), title="demo")
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    for external in ("<script", "<link", "src=", "@import", "url("):
        assert external not in page
    assert page.count('href="') == page.count('href="#')  # links only within the page
    assert "`&lt;shared&gt;` &amp; co" in page and "<shared>" not in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make setup installs "
                    "Debian's chromium)")
def test_the_page_renders_in_a_headless_browser(tmp_path, fleet, capsys):
    """Chromium loads the page from a file with the network off: one section per service
    (and the overall one), a bar per kind whose segments add up to its sites, every row."""
    page = tmp_path / "report.html"
    assert main(["report", "--jobs", "1", "--format", "html", "-o", str(page), str(fleet)]) == 1
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--user-data-dir=" + str(tmp_path / "profile"), "--proxy-server=127.0.0.1:9",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True).stdout
    from html.parser import HTMLParser

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.sections: list[str] = []
            self.bars: list[tuple[int, int]] = []  # (data-total, segments)
            self.rows: list[str] = []

        def handle_starttag(self, tag, attrs):
            attributes = dict(attrs)
            if tag == "section":
                self.sections.append(attributes["data-service"])
            elif tag == "div" and "data-total" in attributes:
                self.bars.append((int(attributes["data-total"]), 0))
            elif tag == "div" and (attributes.get("class") or "").startswith("seg-"):
                total, segments = self.bars[-1]
                self.bars[-1] = (total, segments + int(attributes["title"].split()[0]))
            elif tag == "tr" and "data-status" in attributes:
                self.rows.append(attributes["data-status"])

    seen = Collect()
    seen.feed(dom)
    assert seen.sections == ["(all)", "services/billing", "services/orders"]
    assert seen.bars and all(total == segments for total, segments in seen.bars)
    assert sorted(seen.rows) == sorted(
        ["skipped", "fixable", "correct", "fixable", "correct",
         "fixable", "correct", "reported", "skipped", "skipped"])
    assert "<title>Propagation sites of fleet</title>" in dom


def test_a_check_records_sites_through_its_findings_and_record_correct():
    """A check's SITE_KIND (spelled as a string) makes its findings reported sites;
    record_correct adds the ones it accepts."""
    import libcst as cst

    from scaffold.checks.base import Check
    from scaffold.engine import process_source

    class QueueCheck(Check):
        WHY = FIX_HINT = "-"
        SITE_KIND = "queue"

        def visit_Call(self, node: cst.Call) -> None:
            if isinstance(node.func, cst.Attribute) and node.func.attr.value == "lpush":
                if any(arg.keyword and arg.keyword.value == "traceparent" for arg in node.args):
                    self.record_correct(node, "carries a traceparent")
                else:
                    self.report(node, "pushes an item without context")

    source = b"r.lpush('q', item)\nr.lpush('q', item, traceparent=tp)\n"
    result = process_source(source, "svc/queue.py", [QueueCheck])
    assert QueueCheck.SITE_KIND is SiteKind.QUEUE
    assert [(site.line, site.kind, site.status, site.reason) for site in result.sites] == [
        (1, SiteKind.QUEUE, SiteStatus.REPORTED, "pushes an item without context"),
        (2, SiteKind.QUEUE, SiteStatus.CORRECT, "carries a traceparent"),
    ]


QUEUE = '''
import json

import redis

QUEUE = "jobs"


def enqueue(client: redis.Redis, job_id: str) -> None:
    client.rpush(QUEUE, json.dumps({"id": job_id}))


def work(client: redis.Redis) -> None:
    while True:
        _, raw = client.blpop(QUEUE)
        job = json.loads(raw)
        print(job["id"])
'''


def test_redis_queue_sites_are_fixable_then_correct_after_retrofit(tmp_path, capsys):
    """A push and a worker's pop are queue rows; one retrofit makes both correct."""
    fleet = _write(tmp_path / "fleet", {
        "pyproject.toml": '[project]\nname = "jobs"\n',
        "jobs/__init__.py": "",
        "jobs/queue.py": QUEUE,
    })
    rows = [row for row in _rows(capsys, fleet) if row["kind"] == "queue"]
    assert [(r["line"], r["status"], r["rule_id"]) for r in rows] == [
        (9, "fixable", "redis-queue"), (16, "fixable", "redis-queue")]

    assert main(["retrofit", "--jobs", "1", "--no-tests", str(fleet)]) in (0, 1)
    capsys.readouterr()
    code, out = _report(capsys, "--format", "json", str(fleet))
    rows = [row for row in json.loads(out)["rows"] if row["kind"] == "queue"]
    assert [(Path(r["path"]).name, r["status"]) for r in rows] == [
        ("queue.py", "correct"), ("queue.py", "correct")], out


def test_a_handed_over_envelopes_restore_is_fixable_then_correct():
    """A handler given an envelope parsed elsewhere: its guarded restore is a fixable intake;
    the rewritten one (``use_trace_context(...) if should_restore(...) else nullcontext()``)
    is a correct one, so the table shows the site fixed rather than gone."""
    import json as json_module

    from scaffold.codemods.envelope_restore import EnvelopeRestore
    from scaffold.engine import Settings, process_source

    folder = Path(__file__).resolve().parent.parent / "fixtures" / "envelope-restore" \
        / "envelope_parsed_elsewhere"
    configured = folder / "settings.json"
    settings = Settings(**json_module.loads(configured.read_text())) if configured.is_file() \
        else Settings()

    def intakes(name: str) -> list[SiteStatus]:
        result = process_source((folder / name).read_bytes(), "service/handlers.py",
                                [EnvelopeRestore], settings)
        return [site.status for site in result.sites if site.kind is SiteKind.ENVELOPE_INTAKE]

    before, after = intakes("before.py"), intakes("after.py")
    assert SiteStatus.FIXABLE in before
    assert after.count(SiteStatus.CORRECT) == before.count(SiteStatus.FIXABLE)
    assert SiteStatus.FIXABLE not in after
