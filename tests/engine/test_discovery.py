"""Discovery and config: git's view or a .gitignore-aware walk, globs, symlinks, the kit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from scaffold.config import ConfigError, find_config
from scaffold.engine import discover
from scaffold.engine.discovery import is_test_file
from scaffold.vendor import KitResolver


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")


def _names(root: Path, **kwargs) -> list[str]:
    return [Path(t.display).relative_to(root).as_posix() for t in discover([root], **kwargs)
            if t.skip_reason is None]


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_git_repo_lists_tracked_and_untracked_files_but_not_ignored_ones(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("generated/\n")
    _touch(tmp_path, "app/main.py", "app/new.py", "generated/out.py", "notes.txt")
    _touch(tmp_path, ".venv/lib/site.py", "build/lib/copy.py", "node_modules/x.py")
    _git(tmp_path, "add", "app/main.py", ".gitignore")
    assert _names(tmp_path) == ["app/main.py", "app/new.py"]


def test_without_git_the_walk_honours_nested_gitignores_and_skips_venvs(tmp_path):
    _touch(tmp_path, "a.py", "sub/b.py", "sub/skip_me.py", "ignored/c.py", "env/lib/d.py",
           "__pycache__/e.py", "pkg.egg-info/f.py")
    (tmp_path / ".gitignore").write_text("ignored/\n")
    (tmp_path / "sub" / ".gitignore").write_text("skip_me.py\n")
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    assert _names(tmp_path) == ["a.py", "sub/b.py"]


def test_a_path_git_ignores_is_walked_when_named(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("vendor/\n")
    _touch(tmp_path, "vendor/lib/mod.py")
    assert [Path(t.display).name for t in discover([tmp_path / "vendor"])] == ["mod.py"]


def test_include_and_exclude_globs_come_from_the_nearest_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.scaffold]\ninclude = ["src/**/*.py"]\nexclude = ["src/legacy/"]\n'
    )
    _touch(tmp_path, "src/svc/app.py", "src/legacy/old.py", "scripts/tool.py")
    assert _names(tmp_path) == ["src/svc/app.py"]
    assert [Path(t.display).name for t in discover([tmp_path / "src"])] == ["app.py"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('includes = ["*.py"]', "unknown key 'includes' in [tool.scaffold] of"),
        ("select = 'token-finally'", "key 'select' in [tool.scaffold] of"),
        ("unsafe-fixes = 1", "must be a boolean"),
    ],
)
def test_bad_config_names_the_key_and_the_file(tmp_path, table, message):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f"[tool.scaffold]\n{table}\n")
    with pytest.raises(ConfigError) as raised:
        find_config(tmp_path)
    assert message in str(raised.value) and str(pyproject) in str(raised.value)


@pytest.mark.parametrize(
    ("tables", "expected"),
    [
        ("[tool.ruff]\nline-length = 100\n[tool.black]\nline-length = 79\n", 100),
        ("[tool.black]\nline-length = 79\n", 79),
        ("[tool.ruff.lint]\nselect = ['E']\n", 88),
        ("", None),
    ],
    ids=["ruff's", "black's", "ruff's default", "none known"],
)
def test_the_line_length_is_the_linters(tmp_path, tables, expected):
    (tmp_path / "pyproject.toml").write_text(f"{tables}[tool.scaffold]\n")
    assert find_config(tmp_path).line_length == expected


def test_symlinks_are_followed_only_inside_the_tree_and_loops_do_not_hang(tmp_path):
    outside = tmp_path / "outside"
    tree = tmp_path / "tree"
    _touch(outside, "secret.py")
    _touch(tree, "real.py")
    (tree / "alias.py").symlink_to(tree / "real.py")
    (tree / "escape.py").symlink_to(outside / "secret.py")
    (tree / "loop_a.py").symlink_to(tree / "loop_b.py")
    (tree / "loop_b.py").symlink_to(tree / "loop_a.py")
    (tree / "dir_loop").symlink_to(tree, target_is_directory=True)
    targets = discover([tree])
    taken = [t for t in targets if t.skip_reason is None]
    assert [t.path for t in taken] == [(tree / "real.py").resolve()]
    skipped = {Path(t.display).name: t.skip_reason for t in targets if t.skip_reason}
    assert skipped == {
        "escape.py": "symlink to outside the tree",
        "loop_a.py": "symlink loop",
        "loop_b.py": "symlink loop",
    }


def test_the_kit_is_found_by_its_threads_module(tmp_path):
    _touch(tmp_path, "src/orders/__init__.py", "src/orders/tracekit/__init__.py",
           "src/orders/tracekit/threads.py", "src/orders/app.py")
    targets = discover([tmp_path])
    kits = KitResolver(targets)
    assert {kits.kit_for(t) for t in targets} == {"orders.tracekit"}


def test_a_missing_path_is_an_error(tmp_path):
    from scaffold.engine import PathNotFound

    with pytest.raises(PathNotFound):
        discover([tmp_path / "nope"])


def test_explicit_files_are_taken_even_if_excluded(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.scaffold]\nexclude = ["*.py"]\n')
    _touch(tmp_path, "one.py")
    assert discover([tmp_path]) == []
    (target,) = discover([tmp_path / "one.py"])
    assert target.display == os.fspath(tmp_path / "one.py")


@pytest.mark.parametrize(
    ("relative", "test"),
    [
        ("services/orders/tests/unit/test_bus.py", True),
        ("services/orders/tests/helpers.py", True),  # anything under tests/
        ("test/fakes.py", True),
        ("orders/test_bus.py", True),
        ("orders/bus_test.py", True),
        ("orders/conftest.py", True),
        ("orders/testing/fakes.py", False),  # shipped helpers production may import
        ("orders/testing.py", False),
        ("orders/fixtures/sample.py", False),  # fixture data a service may load
        ("orders/contest.py", False),
        ("orders/latest_test_run.py", False),
        ("orders/attestation.py", False),
        ("qa/tracing/test_trace_bus.py", True),
        ("qa/tracing/tracing_support.py", True),  # under tests-dir
        ("qa/other/support.py", False),
    ],
)
def test_test_files_are_told_by_folder_and_pytest_names(relative, test):
    assert is_test_file(relative, "qa/tracing") is test


def test_the_folders_above_the_project_do_not_make_its_files_tests(tmp_path):
    project = tmp_path / "test" / "orders"
    (project).mkdir(parents=True)
    _touch(project, "orders/bus.py", "orders/tests/test_bus.py", "tracing/support.py")
    (project / "pyproject.toml").write_text('[tool.scaffold]\ntests-dir = "tracing"\n')
    marked = {Path(t.display).relative_to(project).as_posix(): t.test
              for t in discover([project])}
    assert marked == {"orders/bus.py": False, "orders/tests/test_bus.py": True,
                      "tracing/support.py": True}
    (single,) = discover([project / "orders" / "bus.py"])  # a file named on its own too
    assert single.test is False
