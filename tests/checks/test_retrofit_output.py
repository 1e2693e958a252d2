"""No output of retrofit is reported by ``scaffold check``.

Every codemod fixture's ``after.py`` and the retrofitted example (with the tests retrofit
writes) go through every check of ``scaffold check`` (its codemods only report what retrofit
would still change, which the fixture tests and the example's own test cover); no check may
report anything there that it did not already report before the rewrite (a site retrofit
cannot fix, such as the example's planted ``check`` sites, stays reported, on the same line).
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

from example.service import copy_service

from scaffold.checks import all_checks
from scaffold.cli import main
from scaffold.engine import Settings, process_source

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CHECK_IDS = {check.ID for check in all_checks()}
RULES = tuple(all_checks())


def _settings(case: Path) -> Settings:
    path = case / "settings.json"
    return Settings(**json.loads(path.read_text())) if path.exists() else Settings()


def _check_findings(source: str, findings) -> Counter:
    """(rule, the reported line's text) of each check finding: lines move, their text stays."""
    lines = source.splitlines()
    return Counter((f.rule_id, lines[f.line - 1].strip() if 0 < f.line <= len(lines) else "")
                   for f in findings if f.rule_id in CHECK_IDS)


def _fixture_reports() -> list[str]:
    found = []
    for after in sorted(FIXTURES.glob("*/*/after.py")):
        case = after.parent
        settings = _settings(case)
        before_source = (case / "before.py").read_text()
        before = _check_findings(before_source, process_source(
            before_source.encode(), "service/app.py", RULES, settings).findings)
        after_source = after.read_text()
        result = process_source(after_source.encode(), "service/app.py", RULES, settings)
        new = _check_findings(after_source, result.findings) - before
        found += [f"{case.relative_to(FIXTURES)}/after.py: {rule} on `{text}`"
                  for rule, text in new.elements()]
    return found


def _example_reports(tmp_path: Path, capsys) -> list[str]:
    service = copy_service(tmp_path / "legacy_service")
    subprocess.run(["git", "init", "-q"], cwd=service, check=True)

    def check() -> tuple[Counter, dict]:
        main(["check", "--select", ",".join(sorted(CHECK_IDS)), "--jobs", "1",
              "--format", "json", str(service)])
        report = json.loads(capsys.readouterr().out)
        seen: Counter = Counter()
        for site in report["sites"]:
            if site["rule_id"] in CHECK_IDS:
                text = (service / site["path"]).read_text().splitlines()[site["line"] - 1]
                seen[(site["rule_id"], site["path"], text.strip())] += 1
        return seen, report

    before, _ = check()
    main(["retrofit", "--jobs", "1", "--format", "json", str(service)])
    capsys.readouterr()
    after, report = check()
    return [f"example {path}: {rule} on `{text}`"
            for rule, path, text in (after - before).elements()]


def test_scaffold_check_reports_nothing_retrofit_wrote(tmp_path, capsys):
    found = _fixture_reports() + _example_reports(tmp_path, capsys)
    assert not found, "\n".join(found)
