"""planted.toml lists every planted mistake of the example, each findable by its marker."""

import re
import tomllib

import pytest

from example.service import EXAMPLE_DIR
from scaffold.checks import checks_by_id

FIX_IDS = {
    "token-finally",
    "thread-context",
    "opentracing-scope",
    "kafka-produce",
    "kafka-consume",
    "envelope-inject",
    "envelope-restore",
    "http-inject",
    "bootstrap",
}
CHECK_IDS = {
    "baggage-cardinality",
    "propagator-overlap",
    "sampler-root",
    "span-not-ended",
    "hook-attach",
    "extract-discarded",
    "task-outlives-span",
    "private-context-api",
    "init-at-import",
}
PLANTED_COMMENT = re.compile(r"# planted: (?P<id>[a-z-]+):(?P<slug>[a-z-]+)")
SITES = tomllib.loads((EXAMPLE_DIR / "planted.toml").read_text())["site"]
SOURCES = {
    path.relative_to(EXAMPLE_DIR).as_posix(): path.read_text()
    for path in sorted(EXAMPLE_DIR.rglob("*.py"))
    if "__pycache__" not in path.parts
}


def _site_id(site: dict) -> str:
    return site["marker"].removeprefix("# planted: ")


def test_every_rule_has_a_site_of_its_kind():
    kinds = {kind: {s["id"] for s in SITES if s["kind"] == kind} for kind in ("fix", "check")}

    assert kinds == {"fix": FIX_IDS, "check": CHECK_IDS}
    assert {site["kind"] for site in SITES} == {"fix", "check"}


def test_check_only_ids_are_the_checks_of_scaffold():
    assert CHECK_IDS <= set(checks_by_id())


@pytest.mark.parametrize("site", SITES, ids=_site_id)
def test_marker_occurs_once_in_the_example_in_the_file_named(site):
    where = {
        path: text.count(site["marker"]) for path, text in SOURCES.items() if site["marker"] in text
    }

    assert where == {site["file"]: 1}


@pytest.mark.parametrize("site", SITES, ids=_site_id)
def test_marker_names_the_rule_of_its_site(site):
    planted = PLANTED_COMMENT.fullmatch(site["marker"])

    assert planted is not None and planted["id"] == site["id"]
    assert set(site.get("also", ())) <= (FIX_IDS | CHECK_IDS) - {site["id"]}


def test_every_planted_comment_of_the_example_is_listed():
    in_sources = {
        match.group(0) for text in SOURCES.values() for match in PLANTED_COMMENT.finditer(text)
    }

    assert in_sources == {site["marker"] for site in SITES}
