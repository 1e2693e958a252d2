"""An invalid answer: one line naming the question and its rule, and no destination left behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from scaffold.cli import main

INVALID = [
    ("service_name=GradingService", "service_name", "snake_case identifier"),
    ("service_name=grading__service", "service_name", "snake_case identifier"),
    ("package_name=class", "package_name", "Python keyword"),
    ("description=", "description", "must not be empty"),
    ("framework=flask", "framework", "'flask' is not in ['quart', 'fastapi', 'worker']"),
    ("consume_topics=orders", "consume_topics", "non-empty YAML list"),
    ("consume_topics=[orders, 'bad topic']", "consume_topics", '"bad topic" is not'),
    ("consume_topics=[orders", "consume_topics", "cannot be read as its type"),
    ("produce_topic=grading_service.requested", "produce_topic", "not be one of consume_topics"),
    ("consumer_group=a group", "consumer_group", "[A-Za-z0-9._-]"),
    ("dead_letter_topic=dead {topic}", "dead_letter_topic", "[A-Za-z0-9._-]"),
    ("dead_letter_topic={topic}", "dead_letter_topic", "must not be a consumed topic"),
    (
        "dead_letter_topic=grading_service.completed",
        "dead_letter_topic",
        "must not be a consumed topic or produce_topic",
    ),
    ("carrier=body", "carrier", "is not in ['headers', 'metadata', 'both']"),
    ("sampler_ratio=1.5", "sampler_ratio", "from 0.0 to 1.0"),
    ("sampler_ratio=often", "sampler_ratio", "cannot be read as its type"),
    ("otlp_protocol=http/json", "otlp_protocol", "is not in ['grpc', 'http/protobuf']"),
    ("python_version=3.9", "python_version", "is not in ['3.11', '3.12', '3.13']"),
]


@pytest.fixture(autouse=True)
def _template_is_the_snapshot(monkeypatch, template_snapshot):
    """``scaffold new`` renders the committed snapshot of this checkout's template."""
    monkeypatch.setattr("scaffold.new_service.template_root", lambda: template_snapshot)


@pytest.mark.parametrize(
    ("answer", "question", "rule"), INVALID, ids=[answer for answer, _, _ in INVALID]
)
def test_scaffold_new_names_the_question_and_rule_in_one_line(
    tmp_path, capsys, answer, question, rule
):
    dest = tmp_path / "grading_service"

    code = main(["new", str(dest), "--defaults", "--data", answer])

    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"scaffold: invalid answer for '{question}': ")
    assert rule in lines[0]
    assert not dest.exists()


def test_scaffold_new_refuses_a_destination_that_is_not_empty(tmp_path, capsys):
    dest = tmp_path / "grading_service"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine\n")

    code = main(["new", str(dest), "--defaults"])

    assert code == 2
    assert capsys.readouterr().err.strip().endswith("exists and is not empty; choose a new path")
    assert [path.name for path in dest.iterdir()] == ["notes.txt"]


def test_scaffold_new_rejects_an_unknown_question(tmp_path, capsys):
    code = main(["new", str(tmp_path / "svc"), "--defaults", "--data", "servce_name=svc"])

    assert code == 2
    assert "unknown question 'servce_name'" in capsys.readouterr().err
    assert not (tmp_path / "svc").exists()


def test_scaffold_new_without_a_terminal_asks_for_defaults(tmp_path, capsys, monkeypatch):
    with open(os.devnull) as no_terminal:
        monkeypatch.setattr(sys, "stdin", no_terminal)
        code = main(["new", str(tmp_path / "svc")])

    lines = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(lines) == 1 and "--defaults" in lines[0]
    assert not (tmp_path / "svc").exists()


@pytest.mark.parametrize(
    ("answer", "question", "rule"),
    [INVALID[0], INVALID[10], INVALID[11]],
    ids=["validator", "choice", "range"],
)
def test_copier_cli_reports_the_question_and_rule_and_writes_nothing(
    tmp_path, template_snapshot, answer, question, rule
):
    """Through Copier's own CLI: its last line names the question and the rule, nothing is written.

    Copier prints a traceback for an invalid ``--data`` answer (it re-asks interactively); the
    template cannot change that, but the message it ends with is the template's rule.
    """
    dest = tmp_path / "grading_service"

    done = subprocess.run(
        [sys.executable, "-m", "copier", "copy", "--trust", "--defaults",
         "--data", answer, str(template_snapshot), str(dest)],
        capture_output=True, text=True,
    )

    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert f"'{question}'" in last and rule in last, done.stderr
    assert not dest.exists()
