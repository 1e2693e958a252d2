"""The differential test of ``scaffold.engine.fast``: plain LibCST and the shortcuts agree.

Every fixture (before and after), and every file of this environment's site-packages that
reaches LibCST (up to a size), runs through the engine twice, with the shortcuts and with
``plain_libcst()`` (LibCST's own dispatch, rebuilds, metadata walks, positions and import
adder); the results must be equal in every byte written, finding, site and line. This is
the guard for the package's use of LibCST's private names (its docstring lists them).
"""

from __future__ import annotations

import importlib
import sysconfig
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from scaffold.checks import all_checks
from scaffold.codemods import all_codemods
from scaffold.engine import Settings, runner
from scaffold.engine.fast import is_plain, plain_libcst

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RULES = (*all_checks(), *all_codemods())


def _both(source: bytes, path: str, rules=RULES):
    settings = Settings()
    fast = runner._transform(source, path, rules, settings)
    with plain_libcst():
        plain = runner._transform(source, path, rules, settings)
    return fast, plain


def _assert_same(fast, plain) -> None:
    (fast_result, fast_bytes, fast_gates), (result, data, gates) = fast, plain
    assert fast_result == result
    assert fast_result.updated == result.updated
    assert fast_bytes == data and fast_gates == gates


def test_the_switch_turns_the_shortcuts_off_and_back() -> None:
    assert not is_plain()
    with plain_libcst():
        assert is_plain()
    assert not is_plain()


def test_plain_libcst_really_runs_without_the_shortcuts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison is worth something only if the plain run leaves the fast paths: with
    them broken, the fast run fails and the plain one does not."""
    fast_positions = importlib.import_module("scaffold.engine.fast.positions")

    def broken(*args, **kwargs):
        raise AssertionError("a shortcut ran")

    monkeypatch.setattr(fast_positions._SomePositions, "before_codegen", broken)
    data = (FIXTURES / "thread-context" / "aliased_imports" / "before.py").read_bytes()
    with plain_libcst():
        plain = runner._transform(data, "service/app.py", all_codemods(), Settings())
    assert plain[1] is not None  # changed, positions read the plain way
    fast = runner._transform(data, "service/app.py", all_codemods(), Settings())
    assert "internal error" in (fast[0].reason or "")


def _fixture_sources() -> list[Path]:
    return sorted(FIXTURES.glob("*/*/before.py")) + sorted(FIXTURES.glob("*/*/after.py"))


@pytest.mark.parametrize("path", _fixture_sources(), ids=lambda p: "/".join(p.parts[-3:]))
def test_every_fixture_gives_the_same_result_plain_and_fast(path: Path) -> None:
    _assert_same(*_both(path.read_bytes(), "service/app.py"))


# plain LibCST with every check is slow: the real files compared are the smaller ones
# (a few hundred files of site-packages)
REAL_FILE_LIMIT = 12_000  # bytes


def _both_if_parsed(path: Path):
    source = path.read_bytes()
    if len(source) > REAL_FILE_LIMIT or runner.libcst_input(source, RULES, Settings()) is None:
        return None
    return _both(source, str(path))


@pytest.mark.slow
def test_real_files_give_the_same_results_plain_and_fast() -> None:
    """Every file of site-packages up to ``REAL_FILE_LIMIT`` that reaches LibCST."""
    root = Path(sysconfig.get_paths()["purelib"])
    paths = sorted(root.rglob("*.py"))
    compared = changed = 0
    with ProcessPoolExecutor() as pool:
        for both in pool.map(_both_if_parsed, paths, chunksize=16):
            if both is None:
                continue
            _assert_same(*both)
            compared += 1
            changed += both[0][1] is not None
    assert compared >= 50 and changed >= 10  # the comparison saw real rewrites
