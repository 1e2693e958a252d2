"""Every check's VALID and INVALID examples become tests, as in Fixit's testing.py."""

from __future__ import annotations

import pytest

from scaffold.checks import all_checks
from scaffold.checks.base import Invalid, Valid, check_source


def _examples(kind: str):
    for check in all_checks():
        for number, example in enumerate(getattr(check, kind), start=1):
            wrapped = example if not isinstance(example, str) else (
                Valid(example) if kind == "VALID" else Invalid(example)
            )
            yield pytest.param(check, wrapped, id=f"{check.ID}-{kind.lower()}-{number}")


@pytest.mark.parametrize(("check", "example"), list(_examples("VALID")))
def test_valid_example_has_no_finding(check, example):
    assert check_source(example.source, example.path, [check]) == []


@pytest.mark.parametrize(("check", "example"), list(_examples("INVALID")))
def test_invalid_example_has_exactly_the_marked_findings(check, example):
    assert example.expected_lines, "an invalid example must mark its findings with '# <-'"
    findings = check_source(example.source, example.path, [check])
    assert sorted(f.line for f in findings) == example.expected_lines, findings
    assert {f.rule_id for f in findings} == {check.ID}


def test_every_check_documents_itself():
    assert all_checks(), "no check was discovered"
    for check in all_checks():
        assert check.ID and check.SUMMARY and check.WHY and check.FIX_HINT, check
        assert check.VALID and check.INVALID, f"{check.ID} needs valid and invalid examples"
        assert check.ID == check.__module__.rsplit(".", 1)[-1].replace("_", "-")
        help_text = check.help_text()
        assert help_text.startswith(check.SUMMARY)
        assert check.WHY in help_text and check.FIX_HINT in help_text and "```python" in help_text
