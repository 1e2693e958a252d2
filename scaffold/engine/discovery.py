"""Which files a run looks at: git's view of the tree (or a walk honouring .gitignore) + config.

Never descends into virtualenvs, build or cache folders, and never follows a symlink out of the
tree: a symlinked file is taken only if it resolves inside the tree (and then once, by its real
path); symlinked folders are not entered, so symlink loops cannot trap the walk.

Test files: discovery marks each target that is test code (``Target.test``, decided by
``is_test_file`` on its path relative to the project root, the folder of the ``pyproject.toml``
the config came from). The runner keeps codemods out of them unless ``include-tests`` asks
(and out of ``tests-dir``, where retrofit writes its own tests, always: ``Target.generated``),
and kit planning never counts them; checks still read them (a check that has nothing to say
about test code leaves it alone itself).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePath, PurePosixPath

import pathspec

from scaffold.config import Config, find_config
from scaffold.errors import UsageError

SKIPPED_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", ".direnv", "__pycache__",
        ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs", "build", "dist",
        "node_modules", "site-packages", "__pypackages__",
    }
)


# Folders that hold tests only (pytest's and unittest's conventions; nothing imports them at
# run time). ``testing/`` and ``fixtures/`` are not among them: they are packages a library
# ships and production code may import (a ``testing`` module of helpers re-exported by its
# package, fixture data a service loads), so they are code retrofit may need to fix.
TEST_FOLDERS = frozenset({"tests", "test"})
# pytest's default ``python_files`` (``test_*.py``, ``*_test.py``) and its plugin files
_TEST_MODULE = re.compile(r"^(test_.*|.*_test|conftest)\.py$")


def is_test_file(relative: str | PurePath, tests_dir: str | None = None) -> bool:
    """Whether a file is test code: under a ``tests``/``test`` folder, ``test_*.py``,
    ``*_test.py`` or ``conftest.py``, or under ``tests_dir`` (where retrofit writes the tests
    it generates, ``[tool.scaffold] tests-dir``).

    ``relative`` is the path relative to the project root, so the folders above the project
    (a checkout in ``~/test/``) never make its files tests.
    """
    pure = PurePosixPath(PurePath(relative).as_posix())
    return bool(_TEST_MODULE.match(pure.name) or TEST_FOLDERS.intersection(_folders(pure))
                or _under(relative, tests_dir))


def is_test_support(path: str | PurePath) -> bool:
    """A ``testing.py`` module or one in a ``testing`` package: shipped code that serves tests
    (pytest plugins such as the kit's, fakes). Retrofit's scope counts them as code
    (``is_test_file``); rules about test-only tricks exempt them too."""
    pure = PurePath(path)
    return pure.name == "testing.py" or "testing" in pure.parts[:-1]


def _folders(pure: PurePosixPath) -> list[str]:
    return [part for part in pure.parts[:-1] if part not in ("", ".", "..", "/")]


def _under(relative: str | PurePath, folder: str | None) -> bool:
    """Whether ``relative`` (to the project root) is inside ``folder`` (also relative to it)."""
    if not folder:
        return False
    owned = [part for part in PurePosixPath(folder).parts if part not in ("", ".")]
    folders = _folders(PurePosixPath(PurePath(relative).as_posix()))
    return bool(owned) and folders[: len(owned)] == owned


@dataclass(frozen=True)
class Target:
    """One file to process: where it really is, how to show it, the config it falls under."""

    path: Path  # real path on disk (symlinks resolved)
    display: str  # as the user would write it: the PATH argument joined with the relative part
    config: Config
    python: bool = True  # False: a non-Python file some check reads (CONFIG_FILES)
    skip_reason: str | None = None  # set when discovery decided not to process it
    test: bool = False  # test code (is_test_file): codemods leave it alone unless include-tests
    generated: bool = False  # under tests-dir, where retrofit writes its tests: never rewritten
    # matched [tool.scaffold] exclude: listed only when discover() is asked for excluded files
    excluded: bool = False


class PathNotFound(UsageError):
    """A PATH argument does not exist."""


def _skipped_dir(folder: Path, name: str) -> bool:
    return (
        name in SKIPPED_DIRS
        or name.endswith(".egg-info")
        or (folder / name / "pyvenv.cfg").exists()
    )


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes] | None:
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, check=False, timeout=120
        )
    except (OSError, subprocess.SubprocessError):
        return None


def _git_files(root: Path) -> list[str] | None:
    """Paths (relative to ``root``) git tracks or would track; None outside a usable work tree.

    A folder git ignores (say, a path inside ``.venv`` named on purpose) is walked instead.
    """
    inside = _git(root, "rev-parse", "--is-inside-work-tree")
    if inside is None or inside.returncode != 0 or inside.stdout.strip() != b"true":
        return None
    ignored = _git(root, "check-ignore", "-q", ".")
    if ignored is not None and ignored.returncode == 0:
        return None
    listed = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if listed is None or listed.returncode != 0:
        return None
    names = {os.fsdecode(raw) for raw in listed.stdout.split(b"\0") if raw}
    return sorted(names)


def _walk_files(root: Path) -> Iterator[str]:
    """Paths relative to ``root``, honouring every .gitignore on the way down."""
    specs: list[tuple[str, pathspec.PathSpec]] = []
    # os.walk does not follow symlinked folders: no loops, nothing outside the tree
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        rel_folder = here.relative_to(root).as_posix()
        rel_folder = "" if rel_folder == "." else rel_folder + "/"
        specs = [(base, spec) for base, spec in specs if rel_folder.startswith(base)]
        gitignore = here / ".gitignore"
        if gitignore.is_file():
            try:
                lines = gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
                specs.append((rel_folder, pathspec.GitIgnoreSpec.from_lines(lines)))
            except OSError:
                pass

        def ignored(rel: str, is_dir: bool, specs: list = specs) -> bool:
            probe = rel + "/" if is_dir else rel
            return any(spec.match_file(probe[len(base):]) for base, spec in specs)

        dirs[:] = sorted(
            name for name in dirs
            if not _skipped_dir(here, name) and not ignored(rel_folder + name, True)
        )
        for name in sorted(files):
            if not ignored(rel_folder + name, False):
                yield rel_folder + name


def _under_skipped_dir(root: Path, rel: str, known: dict[str, bool]) -> bool:
    """Whether a folder on the way to ``rel`` is one discovery never enters (``known``: the
    answer for each folder asked about so far, by its relative path)."""
    folder, _, _ = rel.rpartition("/")
    if not folder:
        return False
    skipped = known.get(folder)
    if skipped is None:
        parent, _, name = folder.rpartition("/")
        skipped = known[folder] = _under_skipped_dir(root, folder, known) or _skipped_dir(
            root / parent if parent else root, name)
    return skipped


def _matcher(patterns: Sequence[str]) -> pathspec.PathSpec | None:
    return pathspec.GitIgnoreSpec.from_lines(patterns) if patterns else None


def discover(
    paths: Sequence[str | os.PathLike[str]],
    *,
    wants_other_file: Callable[[str], bool] = lambda name: False,
    excluded: bool = False,
) -> list[Target]:
    """Every file under ``paths`` to process, sorted by display path, each once.

    ``wants_other_file(name)`` says whether a non-Python file name is read by some rule.
    A PATH naming a file is always taken; folders are searched as described above. With
    ``excluded``, files the config's ``exclude`` removes are listed too, marked ``excluded``.
    """
    seen: dict[Path, Target] = {}
    for given in paths:
        argument = Path(given)
        if not os.path.lexists(argument):
            raise PathNotFound(f"path {str(given)!r} does not exist")
        config = find_config(argument)
        if not argument.is_dir():
            target = _target(argument, str(given), config, wants_other_file, tree=None)
            if target is not None:
                seen.setdefault(target.path, target)
            continue
        root = argument
        listed = _git_files(root)
        rel_paths = listed if listed is not None else list(_walk_files(root))
        include, exclude = _matcher(config.include), _matcher(config.exclude)
        skipped: dict[str, bool] = {}
        real_root = root.resolve()
        for rel in rel_paths:
            if not (rel.endswith(".py") or wants_other_file(rel.rsplit("/", 1)[-1])):
                continue
            if listed is not None and _under_skipped_dir(root, rel, skipped):
                continue  # (the walk never enters such a folder)
            full = root / rel
            anchored = _anchored(full, config.root)
            if include is not None and (anchored is None or not include.match_file(anchored)):
                continue
            out = exclude is not None and anchored is not None and exclude.match_file(anchored)
            if out and not excluded:
                continue
            display = os.path.join(str(given), rel) if str(given) != "." else rel
            target = _target(full, display, config, wants_other_file, tree=real_root,
                             real=real_root / rel)
            if target is not None:
                seen.setdefault(target.path, replace(target, excluded=True) if out else target)
    return sorted(seen.values(), key=lambda target: target.display)


def _anchored(full: Path, base: Path) -> str | None:
    try:
        return full.absolute().relative_to(base).as_posix()
    except ValueError:
        return None


def _target(
    full: Path,
    display: str,
    config: Config,
    wants_other_file: Callable[[str], bool],
    *,
    tree: Path | None,
    real: Path | None = None,
) -> Target | None:
    """The Target for one path (see ``_located``), marked when it is test code."""
    target = _located(full, display, config, wants_other_file, tree=tree, real=real)
    if target is None:
        return None
    relative = _anchored(target.path, config.root) or _anchored(full, config.root)
    if relative is None:  # outside its config's folder: only its name can tell
        relative = full.name
    return replace(target, test=is_test_file(relative, config.tests_dir),
                   generated=_under(relative, config.tests_dir))


def _located(
    full: Path,
    display: str,
    config: Config,
    wants_other_file: Callable[[str], bool],
    *,
    tree: Path | None,
    real: Path | None = None,
) -> Target | None:
    """The Target for one path, or None; ``tree`` (resolved) is the folder a symlink must stay
    inside; ``real`` is where ``full`` really is unless it is a symlink itself (discovery
    never lists a file below a symlinked folder)."""
    python = full.name.endswith(".py") or not wants_other_file(full.name)
    try:
        mode = os.lstat(full).st_mode
    except OSError:
        return None  # in git's index but deleted from the work tree
    if stat.S_ISLNK(mode):
        try:
            resolved = full.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            reason = "symlink loop" if "loop" in str(exc).lower() else "broken symlink"
            return Target(full.absolute(), display, config, python, skip_reason=reason)
        if tree is not None and not resolved.is_relative_to(tree):
            return Target(full.absolute(), display, config, python,
                          skip_reason="symlink to outside the tree")
        if not resolved.is_file():
            return None
        return Target(resolved, display, config, python)
    if not stat.S_ISREG(mode):
        return None
    return Target(real if real is not None else full.resolve(), display, config, python)
