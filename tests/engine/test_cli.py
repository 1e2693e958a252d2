"""``scaffold retrofit`` and ``scaffold rules`` in-process: exit codes, formats, SARIF schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from scaffold.api import Options, run
from scaffold.checks import all_checks
from scaffold.cli import main
from scaffold.codemods import all_codemods
from scaffold.engine.report import sarif

SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "data" / "sarif-schema-2.1.0.json").read_text()
)
UNGUARDED = (
    "from opentelemetry import context\n\n\ndef handle(ctx):\n"
    "    token = context.attach(ctx)\n    work()\n    context.detach(token)\n"
)


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "svc.py").write_text(UNGUARDED)
    (tmp_path / "hooks.py").write_text(
        "from opentelemetry import context\n\ndef before(ctx):\n    context.attach(ctx)\n"
    )
    return tmp_path


def test_check_and_diff_exit_1_and_write_nothing(repo, capsys):
    assert main(["retrofit", "--check", str(repo)]) == 1
    assert main(["retrofit", "--diff", str(repo)]) == 1
    out = capsys.readouterr().out
    assert "+    try:" in out and f"--- a/{repo}/svc.py" in out
    assert (repo / "svc.py").read_text() == UNGUARDED


def test_a_write_run_exits_1_then_only_findings_remain(repo, capsys):
    assert main(["retrofit", str(repo)]) == 1
    assert "try:" in (repo / "svc.py").read_text()
    capsys.readouterr()
    assert main(["retrofit", "--check", "--select", "token-finally", str(repo / "svc.py")]) == 0
    assert "nothing to change" in capsys.readouterr().out
    assert main(["retrofit", "--check", "--ignore", "token-finally", str(repo)]) == 0


def test_retrofit_exits_0_when_only_findings_remain_and_check_exits_1(repo, capsys):
    """A site retrofit cannot fix is printed, not a change: CI's `retrofit --check` passes,
    while `scaffold check` (made for findings) fails."""
    main(["retrofit", str(repo / "svc.py")])
    capsys.readouterr()
    assert main(["retrofit", "--check", str(repo)]) == 0
    assert "hooks.py:4:5" in capsys.readouterr().out
    assert main(["check", str(repo)]) == 1


def test_json_lists_every_change_and_finding(repo, capsys):
    main(["retrofit", "--check", "--format", "json", str(repo)])
    report = json.loads(capsys.readouterr().out)
    sites = {(Path(s["path"]).name, s["line"], s["column"], s["rule_id"], s["kind"])
             for s in report["sites"]}
    assert sites == {
        ("svc.py", 5, 5, "token-finally", "change"),
        ("hooks.py", 4, 5, "token-finally", "finding"),
    }
    assert all(s["message"] for s in report["sites"])
    assert report["exit_code"] == 1 and report["summary"]["changed"] == 1


def test_sarif_is_valid_2_1_0_with_rule_metadata_for_codemods_and_checks(repo, capsys):
    (repo / "broken.py").write_text(
        "from opentelemetry import context\ndef (:\n    context.attach(x)\n"
    )
    (repo / "extract.py").write_text(
        "from opentelemetry import propagate\ndef f(m):\n    propagate.extract(m.headers)\n"
    )
    assert main(["retrofit", "--check", "--format", "sarif", str(repo)]) == 2
    log = json.loads(capsys.readouterr().out)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    combined = run([repo], (*all_codemods(), *all_checks()), Options())
    combined_log = sarif(combined)
    jsonschema.Draft4Validator(SCHEMA).validate(combined_log)
    rules = {r["id"]: r for r in combined_log["runs"][0]["tool"]["driver"]["rules"]}
    for rule_id in ("token-finally", "thread-context", "opentracing-scope", "extract-discarded"):
        assert rules[rule_id]["shortDescription"]["text"]
        assert rules[rule_id]["help"]["text"]
    assert rules["token-finally"]["properties"]["fixSafety"] == "safe"
    results = combined_log["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"token-finally", "extract-discarded"}
    for result in results:
        assert result["ruleIndex"] == list(rules).index(result["ruleId"])
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
    notes = combined_log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert [n["level"] for n in notes] == ["error"]


def test_github_format_annotates_each_site(repo, capsys):
    main(["retrofit", "--check", "--format", "github", str(repo)])
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("::warning file=") and "title=token-finally" in line
               for line in lines)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--select", "no-such-rule"], "unknown rule 'no-such-rule' in --select"),
        (["--select", "extract-discarded"], "unknown rule 'extract-discarded' in --select"),
        (["--jobs", "-1"], None),
    ],
)
def test_usage_errors_exit_2_with_one_line(repo, capsys, argv, message):
    try:
        code = main(["retrofit", *argv, str(repo)])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    if message:
        assert err.startswith("scaffold: ") and message in err and "\n" not in err


def test_config_errors_exit_2_naming_key_and_file(repo, capsys):
    (repo / "pyproject.toml").write_text('[tool.scaffold]\nselct = ["token-finally"]\n')
    assert main(["retrofit", "--check", str(repo)]) == 2
    err = capsys.readouterr().err
    assert "'selct'" in err and str(repo / "pyproject.toml") in err


def test_config_select_may_name_checks_and_options_are_validated(repo, capsys):
    (repo / "pyproject.toml").write_text(
        '[tool.scaffold]\nselect = ["thread-context", "extract-discarded"]\n'
    )
    assert main(["retrofit", "--check", str(repo)]) == 0
    (repo / "pyproject.toml").write_text(
        "[tool.scaffold.options.token-finally]\nstrict = true\n"
    )
    assert main(["retrofit", "--check", str(repo)]) == 2
    assert "unknown option 'strict' for codemod 'token-finally' (known: none)" in (
        capsys.readouterr().err)
    (repo / "pyproject.toml").write_text(
        '[tool.scaffold.options.envelope-inject]\npublish-methods = "emit"\n'
    )
    assert main(["retrofit", "--check", str(repo)]) == 2
    assert "option 'publish-methods' of codemod 'envelope-inject' must be a list of strings" in (
        capsys.readouterr().err)


def test_no_progress_bar_when_stderr_is_not_a_terminal(repo, capsys):
    main(["retrofit", "--check", "--no-tests", str(repo)])
    assert capsys.readouterr().err == ""


def test_rules_lists_every_codemod_and_check(capsys):
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    for rule_id in ("token-finally", "thread-context", "opentracing-scope"):
        assert rule_id in out
    assert main(["rules", "--format", "json"]) == 0
    table = json.loads(capsys.readouterr().out)
    kinds = {row["id"]: (row["kind"], row["fix_safety"]) for row in table}
    assert kinds["token-finally"] == ("codemod", "safe")
    assert main(["rules", "--explain", "thread-context"]) == 0
    assert "## Fix safety" in capsys.readouterr().out
