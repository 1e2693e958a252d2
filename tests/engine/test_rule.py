"""The rule contract: one metadata mixin, one rule doc, for codemods and checks alike."""

from __future__ import annotations

import pytest

from scaffold.checks import all_checks
from scaffold.codemods import all_codemods, codemods_by_id
from scaffold.engine.options import RuleOptionError
from scaffold.engine.rule import NO_FIX, RuleDoc, is_codemod
from scaffold.registry import all_rules

DOC = '''A summary line.

What it does: finds a thing
over two lines.

A second paragraph of what it does.

Why: it breaks traces.

Example::

    token = attach(ctx)

    work()

Use instead::

    with attached(ctx):
        work()

Fix safety: safe. Nothing else changes.
'''


def test_a_docstring_splits_into_ruffs_sections():
    doc = RuleDoc.parse(DOC, fix_safety="safe", options={"names": ("a",), "strict": True},
                        rule_id="some-rule")
    assert doc.summary == "A summary line."
    assert doc.what == "Finds a thing\nover two lines.\n\nA second paragraph of what it does."
    assert doc.why == "It breaks traces."
    assert doc.example == "token = attach(ctx)\n\nwork()\n"
    assert doc.use_instead == "with attached(ctx):\n    work()\n"
    assert doc.fix_safety == "Safe. Nothing else changes."
    text = doc.markdown()
    assert text.index("## What it does") < text.index("## Why is this bad?") \
        < text.index("## Example") < text.index("Use instead:") < text.index("## Fix safety") \
        < text.index("## Options")
    assert "```python\nwith attached(ctx):\n    work()\n```" in text
    assert "`[tool.scaffold.options.some-rule]`" in text
    assert '- `names` (default: `["a"]`)' in text and "- `strict` (default: `true`)" in text


def test_a_heading_word_inside_a_paragraph_starts_no_section():
    doc = RuleDoc.parse("Summary.\n\nWhat it does: reports.\nWhy: not a heading here.\n")
    assert doc.what == "Reports.\nWhy: not a heading here." and doc.why == ""
    assert doc.fix_safety == "No fix: this rule only reports." and NO_FIX == "none"


@pytest.mark.parametrize("rule", all_rules(), ids=lambda rule: rule.ID)
def test_every_rule_renders_the_same_sections(rule):
    text = rule.help_text()
    assert text.startswith(rule.SUMMARY)
    for heading in ("## What it does", "## Why is this bad?", "## Example", "Use instead:",
                    "## Fix safety"):
        assert heading in text, heading
    assert ("## Options" in text) == bool(rule.OPTIONS)


def test_the_kinds_differ_only_where_they_should():
    assert all(is_codemod(rule) for rule in all_codemods())
    assert not any(is_codemod(rule) for rule in all_checks())
    assert {check.FIX_SAFETY for check in all_checks()} == {NO_FIX}
    assert all(not check.reads_config_file("x.py") or check.CONFIG_FILES
               for check in all_checks())
    assert not any(codemod.reads_config_file(".env") for codemod in all_codemods())
    with pytest.raises(RuleOptionError, match="codemod 'token-finally'"):
        codemods_by_id()["token-finally"].resolve_options({"nope": 1})
    with pytest.raises(RuleOptionError, match="check 'baggage-cardinality'"):
        next(c for c in all_checks() if c.ID == "baggage-cardinality").resolve_options(
            {"nope": 1})
