"""``scaffold check`` through the CLI: findings, exit codes, config, suppression, formats."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from textwrap import dedent

import jsonschema
import pytest

from scaffold.checks import all_checks
from scaffold.cli import main

INIT_AT_IMPORT = """
    from tracekit import init_tracing

    tracer = init_tracing("orders")
"""
INIT_IN_FACTORY = """
    from tracekit import init_tracing

    def create_app():
        init_tracing("orders")
"""
BAGGAGE = """
    from opentelemetry import baggage

    def tag(user):
        return baggage.set_baggage("tenant", user.tenant)
"""


def _tree(root: Path, sources: dict[str, str]) -> Path:
    for relative, text in sources.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text).lstrip("\n"))
    return root


def _check(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check", "--jobs", "1", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _sites(capsys, *args: str) -> tuple[int, list[dict]]:
    code, out, _ = _check(capsys, "--format", "json", *args)
    return code, json.loads(out)["sites"]


def test_a_finding_is_printed_where_it_is_and_exits_1(tmp_path, capsys):
    _tree(tmp_path, {"svc/app.py": INIT_AT_IMPORT})
    code, out, _ = _check(capsys, str(tmp_path))
    assert code == 1
    assert f"{tmp_path}/svc/app.py:3:10: init-at-import " in out


def test_a_clean_tree_exits_0(tmp_path, capsys):
    _tree(tmp_path, {"svc/app.py": INIT_IN_FACTORY})
    code, out, _ = _check(capsys, str(tmp_path))
    assert code == 0, out


def test_check_never_writes(tmp_path, capsys):
    app = _tree(tmp_path, {"svc/app.py": INIT_AT_IMPORT}) / "svc/app.py"
    before = app.read_bytes(), app.stat().st_mtime_ns
    _check(capsys, str(tmp_path))
    assert (app.read_bytes(), app.stat().st_mtime_ns) == before


@pytest.mark.parametrize(
    ("comment", "expected_code"),
    [
        ("  # scaffold: ignore[init-at-import]", 0),
        ("  # scaffold: ignore", 0),
        ("  # scaffold: ignore[baggage-cardinality]", 1),
    ],
    ids=["own-id-silences", "bare-ignore-silences", "other-id-does-not"],
)
def test_suppression_comment(tmp_path, capsys, comment, expected_code):
    call = 'init_tracing("orders")'
    source = dedent(INIT_AT_IMPORT).replace(call, call + comment)
    _tree(tmp_path, {"app.py": source})
    code, _, _ = _check(capsys, str(tmp_path))
    assert code == expected_code


def test_rule_options_come_from_pyproject(tmp_path, capsys):
    _tree(tmp_path, {"svc/tags.py": BAGGAGE})
    code, sites = _sites(capsys, str(tmp_path))
    assert code == 1 and [s["rule_id"] for s in sites] == ["baggage-cardinality"]

    (tmp_path / "pyproject.toml").write_text(
        "[tool.scaffold.options.baggage-cardinality]\n"
        'allowed-keys = ["correlation_id", "tenant"]\n'
        'unbounded-words = ["email"]\n'
    )
    assert _sites(capsys, str(tmp_path)) == (0, [])


def test_an_unknown_check_option_is_a_usage_error(tmp_path, capsys):
    _tree(tmp_path, {"svc/tags.py": BAGGAGE})
    (tmp_path / "pyproject.toml").write_text(
        '[tool.scaffold.options.baggage-cardinality]\nallowed-key = ["tenant"]\n'
    )
    code, _, err = _check(capsys, str(tmp_path))
    assert code == 2
    assert "'allowed-key'" in err and "baggage-cardinality" in err and "pyproject.toml" in err


def test_select_and_ignore_pick_checks(tmp_path, capsys):
    _tree(tmp_path, {"a.py": INIT_AT_IMPORT, "b.py": BAGGAGE})
    _, everything = _sites(capsys, str(tmp_path))
    assert {s["rule_id"] for s in everything} == {"init-at-import", "baggage-cardinality"}
    _, selected = _sites(capsys, "--select", "init-at-import", str(tmp_path))
    assert {s["rule_id"] for s in selected} == {"init-at-import"}
    _, ignored = _sites(capsys, "--ignore", "init-at-import", str(tmp_path))
    assert {s["rule_id"] for s in ignored} == {"baggage-cardinality"}


def test_env_and_compose_files_are_checked(tmp_path, capsys):
    _tree(tmp_path, {
        "deploy/.env": "OTEL_PROPAGATORS=baggage,tracecontext\n",
        "compose.yaml": "services:\n  app:\n    environment:\n"
                        "      OTEL_TRACES_SAMPLER: traceidratio\n",
        "notes.yaml": "OTEL_PROPAGATORS: baggage,tracecontext\n",
    })
    code, sites = _sites(capsys, str(tmp_path))
    assert code == 1
    assert sorted((Path(s["path"]).name, s["line"], s["rule_id"]) for s in sites) == [
        (".env", 1, "propagator-overlap"),
        ("compose.yaml", 4, "sampler-root"),
    ]


def test_a_file_that_does_not_parse_exits_2(tmp_path, capsys):
    _tree(tmp_path, {"broken.py": "def init_tracing(:\n", "app.py": INIT_AT_IMPORT})
    code, out, _ = _check(capsys, str(tmp_path))
    assert code == 2
    assert "broken.py: error: syntax error" in out
    assert "app.py:3:10: init-at-import" in out  # the other file is still checked


# -- output formats -------------------------------------------------------------------------


@pytest.fixture
def mistakes(tmp_path: Path) -> Path:
    return _tree(tmp_path, {"svc/app.py": INIT_AT_IMPORT, "svc/tags.py": BAGGAGE})


def test_json_format(mistakes, capsys):
    code, out, _ = _check(capsys, "--format", "json", str(mistakes))
    report = json.loads(out)
    assert code == report["exit_code"] == 1
    assert report["mode"] == "check"
    assert sorted((Path(s["path"]).name, s["line"], s["rule_id"], s["kind"])
                  for s in report["sites"]) == [
        ("app.py", 3, "init-at-import", "finding"),
        ("tags.py", 4, "baggage-cardinality", "finding"),
    ]
    described = {rule["id"]: rule for rule in report["rules"]}
    for check in all_checks():
        assert described[check.ID]["kind"] == "check"
        assert check.WHY in described[check.ID]["help"]


def _sarif_schema() -> dict:
    return json.loads((Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json").read_text())


def test_sarif_format_is_valid_sarif_2_1_0_with_rule_help(mistakes, capsys):
    code, out, _ = _check(capsys, "--format", "sarif", str(mistakes))
    log = json.loads(out)
    jsonschema.Draft4Validator(_sarif_schema()).validate(log)
    assert code == 1 and log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for check in all_checks():
        rule = next(rule for rule in rules if rule["id"] == check.ID)
        assert rule["shortDescription"]["text"] == check.SUMMARY
        assert check.FIX_HINT in rule["help"]["text"]
    results = sorted(
        (r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"])
        for r in run["results"]
    )
    assert results == [("baggage-cardinality", 4), ("init-at-import", 3)]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_a_broken_sarif_log_fails_the_schema():
    """The schema check has teeth: a result without a message is rejected."""
    broken = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "scaffold"}},
                                           "results": [{"ruleId": "x"}]}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(_sarif_schema()).validate(broken)


_ANNOTATION = re.compile(
    r"^::warning file=(?P<file>[^,]+),line=(?P<line>\d+),col=(?P<col>\d+)"
    r"(,endLine=\d+)?,title=(?P<title>[a-z-]+)::(?P<message>.+)$"
)


def test_github_format_prints_one_annotation_per_finding(mistakes, capsys):
    code, out, _ = _check(capsys, "--format", "github", str(mistakes))
    matches = [_ANNOTATION.match(line) for line in out.splitlines()]
    assert code == 1 and all(matches), out
    assert sorted((Path(m["file"]).name, int(m["line"]), m["title"]) for m in matches) == [
        ("app.py", 3, "init-at-import"),
        ("tags.py", 4, "baggage-cardinality"),
    ]


def test_make_check_runs_scaffold_check_on_repo(tmp_path):
    """`make check REPO=path`: the Makefile target fails on a finding and passes a clean tree."""
    repo_root = Path(__file__).resolve().parents[2]
    _tree(tmp_path / "bad", {"app.py": INIT_AT_IMPORT})
    _tree(tmp_path / "good", {"app.py": INIT_IN_FACTORY})
    def make_check(folder: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "-s", "-C", str(repo_root), "check", f"REPO={folder}"],
            capture_output=True, text=True, timeout=300,
        )

    bad, good = make_check(tmp_path / "bad"), make_check(tmp_path / "good")
    assert bad.returncode != 0 and "init-at-import" in bad.stdout, bad.stdout + bad.stderr
    assert good.returncode == 0, good.stdout + good.stderr
