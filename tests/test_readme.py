"""The README's generated parts match what the code says today."""

import re
from pathlib import Path

from scaffold.commands.rules import rules_markdown
from scaffold.engine.report import rules_table
from scaffold.registry import all_rules

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_catalogue_is_the_generated_one():
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- rules:start -->\n(.*?)<!-- rules:end -->", text, re.S)
    assert match, "README lost its <!-- rules:start/end --> markers"
    assert match.group(1) == rules_markdown(rules_table(all_rules())), (
        "README catalogue is stale: paste `scaffold rules --format markdown` between the markers"
    )


def test_readme_states_the_two_setup_commands_ci_runs():
    text = README.read_text(encoding="utf-8")
    assert "make setup" in text and "make test" in text
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line.strip() for line in ci.splitlines()
                if line.strip() and not line.startswith("#") and line.startswith("make")]
    # the README's two commands, and between them the lint and type checks of scaffold itself
    assert commands == ["make setup", "make lint", "make typecheck", "make test"]
    assert "make lint" in text and "make typecheck" in text
