"""scaffold.api: what the commands do, called as a library."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaffold import api
from scaffold.config import ConfigError
from scaffold.engine import Options as EngineOptions
from scaffold.engine import Status
from scaffold.engine.discovery import PathNotFound
from scaffold.errors import UsageError

THREADED = "import threading\n\n\ndef start(work):\n    threading.Thread(target=work).start()\n"


def _service(root: Path) -> Path:
    (root / "pyproject.toml").write_text('[project]\nname = "orders"\nversion = "0"\n')
    (root / "orders").mkdir()
    (root / "orders" / "__init__.py").write_text("")
    module = root / "orders" / "work.py"
    module.write_text(THREADED)
    return module


def test_a_dry_retrofit_says_what_it_would_write_and_writes_nothing(tmp_path):
    module = _service(tmp_path)
    done = api.retrofit([tmp_path], write=False, jobs=1)
    changed = [Path(result.path).relative_to(tmp_path).as_posix() for result in done.result.changed]
    assert "orders/work.py" in changed
    assert any(path.startswith("orders/tracekit/") for path in changed)  # the kit it vendors
    assert done.exit_code == 1 and done.tests == ()
    assert module.read_text() == THREADED and not (tmp_path / "orders" / "tracekit").exists()


def test_a_retrofit_writes_the_fix_the_kit_and_the_tests(tmp_path):
    module = _service(tmp_path)
    done = api.retrofit([tmp_path], jobs=1)
    assert "from orders.tracekit import" in module.read_text()
    assert (tmp_path / "orders" / "tracekit" / "threads.py").is_file()
    assert [generated.root for generated in done.tests] == [tmp_path]
    assert api.retrofit([tmp_path], write=False, jobs=1).result.changed == []


def test_check_runs_the_codemods_as_retrofit_check_and_never_writes(tmp_path):
    module = _service(tmp_path)
    result = api.check([tmp_path], jobs=1)
    assert str(module) in {r.path for r in result.results if r.status is Status.CHANGED}
    assert result.exit_code == 1 and module.read_text() == THREADED


def test_the_kit_is_planned_even_without_vendoring(tmp_path):
    """api.run resolves each file's kit; the engine alone knows only a configured one."""
    from scaffold.codemods import codemods_by_id

    _service(tmp_path)
    rules = [codemods_by_id()["thread-context"]]
    with_kit = api.run([tmp_path], rules, EngineOptions(jobs=1))
    assert "from orders.tracekit import" in (with_kit.changed[0].updated or "")
    assert all("tracekit" not in r.path for r in with_kit.results)  # nothing vendored


def test_what_the_user_can_fix_is_a_usage_error(tmp_path):
    with pytest.raises(PathNotFound) as missing:
        api.check([tmp_path / "missing"])
    assert isinstance(missing.value, UsageError)
    (tmp_path / "pyproject.toml").write_text('[tool.scaffold]\nselect = ["no-such-rule"]\n')
    (tmp_path / "app.py").write_text(THREADED)
    with pytest.raises(ConfigError, match="no-such-rule") as bad:
        api.check([tmp_path])
    assert isinstance(bad.value, UsageError)


def test_rules_lists_codemods_then_checks():
    kinds = [rule["kind"] for rule in api.rules()]
    assert kinds == sorted(kinds, key=lambda kind: kind != "codemod") and "check" in kinds
