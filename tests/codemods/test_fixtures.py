"""Every codemod's before/after fixtures: the rewrite, its reports, a second run changing nothing.

``tests/fixtures/<id>/<case>/before.py`` becomes ``after.py`` (no ``after.py``: unchanged);
lines of ``before.py`` ending in ``# <- reported`` must each carry exactly one finding, and no
other line any. An optional ``settings.json`` holds ``scaffold.engine.Settings`` fields (e.g.
the kit's import path).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scaffold.codemods import ORDER, all_codemods
from scaffold.engine import Kind, Settings, Status, process_source

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REPORTED = "# <- reported"


def _cases():
    for codemod in all_codemods():
        for case in sorted(p for p in (FIXTURES / codemod.ID).iterdir() if p.is_dir()):
            yield pytest.param(codemod, case, id=f"{codemod.ID}: {case.name.replace('_', ' ')}")


def _settings(case: Path) -> Settings:
    path = case / "settings.json"
    return Settings(**json.loads(path.read_text())) if path.exists() else Settings()


def _run(codemod, case: Path, source: bytes):
    return process_source(source, "service/app.py", [codemod], _settings(case))


@pytest.mark.parametrize(("codemod", "case"), list(_cases()))
def test_before_becomes_after(codemod, case):
    before = (case / "before.py").read_bytes()
    after = case / "after.py"
    result = _run(codemod, case, before)
    if after.exists():
        assert result.status is Status.CHANGED, result
        assert result.updated == after.read_text()
        compile(result.updated, str(after), "exec")
        assert any(f.kind is Kind.CHANGE for f in result.findings)
    else:
        assert result.status is Status.UNCHANGED, result
        assert not [f for f in result.findings if f.kind is Kind.CHANGE]
    marked = [n for n, line in enumerate(before.decode().splitlines(), 1)
              if line.rstrip().endswith(REPORTED)]
    reported = sorted(f.line for f in result.findings if f.kind is Kind.FINDING)
    assert reported == marked, result.findings
    assert {f.rule_id for f in result.findings} <= {codemod.ID}


@pytest.mark.parametrize(("codemod", "case"), list(_cases()))
def test_second_run_changes_nothing(codemod, case):
    output = case / "after.py" if (case / "after.py").exists() else case / "before.py"
    source = output.read_bytes()
    result = _run(codemod, case, source)
    assert result.status is Status.UNCHANGED, result.updated
    # what it could not fix it reports again, each site once, and nothing else
    marked = [n for n, line in enumerate(source.decode().splitlines(), 1)
              if line.rstrip().endswith(REPORTED)]
    assert sorted(f.line for f in result.findings) == marked, result.findings


def test_every_codemod_has_changed_and_unchanged_fixtures_and_a_rule_doc():
    ids = [codemod.ID for codemod in all_codemods()]
    assert {"opentracing-scope", "token-finally", "thread-context", "kafka-produce",
            "kafka-consume", "envelope-inject", "envelope-restore", "http-inject",
            "bootstrap"} <= set(ids)
    assert ids == [codemod_id for codemod_id in ORDER if codemod_id in ids]
    for codemod in all_codemods():
        cases = [p for p in (FIXTURES / codemod.ID).iterdir() if p.is_dir()]
        assert any((c / "after.py").exists() for c in cases), codemod.ID
        assert any(not (c / "after.py").exists() for c in cases), codemod.ID
        # the module docstring has every section of the rule doc (What it does:, Why:,
        # Example::, Use instead::, Fix safety:), which `scaffold rules` renders
        doc = codemod.rule_doc()
        for section in ("what", "why", "example", "use_instead", "fix_safety"):
            assert getattr(doc, section), (codemod.ID, section)
        for heading in ("## What it does", "## Why is this bad?", "## Example", "Use instead:",
                        "## Fix safety"):
            assert heading in codemod.help_text(), (codemod.ID, heading)
        assert codemod.FIX_SAFETY in ("safe", "unsafe")
        assert codemod.ID == codemod.__module__.rsplit(".", 1)[-1].replace("_", "-")
