"""Packages and import roots of a repository, read from its packaging metadata.

A file's import root is the folder that must be on ``sys.path`` for it to be imported under
the name the repository uses for it. Metadata decides first: the nearest project folder (the
one holding ``pyproject.toml``, ``setup.py`` or ``setup.cfg``: a distribution or a service)
lists its packages in one of

- hatch: ``[tool.hatch.build.targets.wheel] packages = ["src/orders"]`` (or ``[tool.hatch.build]``);
- setuptools: ``[tool.setuptools] packages = [...]``, ``package-dir = {"" = "src"}``,
  ``packages.find.where``; ``setup.cfg`` ``[options] package_dir`` / ``[options.packages.find]``;
  literal ``package_dir=`` / ``find_packages(where=...)`` in ``setup.py``;
- pdm: ``[tool.pdm.build] package-dir``, ``includes``;
- poetry: ``[tool.poetry] packages = [{include = "orders", from = "src"}]``;

and without a list a ``src/`` folder holding packages is a src layout. A file inside one of
those packages is imported from that package's parent folder (``runtimes/`` when a wheel ships
only ``runtimes/inner``). Everything else is imported the way Python finds it from the top of
its ``__init__.py`` chain: the chain climbs through regular packages and through folders
without ``__init__.py`` below one (namespace portions such as
``services/email_service`` in a ``services`` package), never through a ``src`` folder. A
file in no package is imported from its own folder (a script's ``sys.path[0]``).

Test packages (``tests``, ``test``, ``testing``, anything below one, and folders holding a
``conftest.py`` other than a project's own folder) never hold code a service runs.

Only the standard library: the repo model and the kit placement both build on it.
"""

from __future__ import annotations

import ast
import configparser
import fnmatch
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg")
TEST_PACKAGE_NAMES = frozenset({"tests", "test", "testing"})
_LAYOUT_FOLDER = "src"  # a src layout's folder: on sys.path, never a package itself


@dataclass(frozen=True)
class ImportRoot:
    """A folder files are imported from, and the project (distribution/service) holding it."""

    path: Path  # the folder on sys.path (repo root, src/, a project folder)
    project: Path | None  # folder of the nearest pyproject.toml/setup.py (distribution/service)


@dataclass(frozen=True)
class Distribution:
    """What one project folder's metadata says about the packages it ships."""

    project: Path
    name: str | None
    installable: bool  # pip can install it (a name, or setup.py), and it does not opt out
    roots: tuple[Path, ...]  # folders its packages are imported from (metadata or src/ layout)
    packages: tuple[Path, ...]  # its top-level package folders, when metadata lists them
    declared: bool  # roots come from a package list in the metadata (not a src/ folder)


def import_roots(repo_root: Path, files: Sequence[Path]) -> tuple[ImportRoot, ...]:
    """The import roots of ``files`` (each once, sorted by path)."""
    model = Packaging(repo_root)
    return tuple(sorted({model.root_of(path) for path in files}, key=lambda root: root.path))


def module_name(path: Path, roots: Sequence[ImportRoot]) -> str | None:
    """The dotted module ``path`` is imported as from one of ``roots`` (None: from none).

    The root the packaging metadata gives the file wins; otherwise the deepest root from
    which every folder down to the file is a package.
    """
    path = Path(os.path.abspath(path))
    holding = [root for root in roots if path.is_relative_to(root.path)]
    if not holding:
        return None
    model = Packaging(min(holding, key=lambda root: len(root.path.parts)).path)
    own = model.root_of(path)
    if any(root.path == own.path for root in holding):
        return model.module_of(path)
    for root in sorted(holding, key=lambda root: len(root.path.parts), reverse=True):
        if model.reaches(root.path, path.parent):
            return _dotted(root.path, path)
    return None


def is_test_name(name: str) -> bool:
    """Is a folder of this name a test package?"""
    return name in TEST_PACKAGE_NAMES


class Packaging:
    """Packaging facts of one repository, cached per folder (ask as often as needed)."""

    def __init__(self, repo_root: Path) -> None:
        self.repo_root = Path(os.path.abspath(repo_root))
        self._packages: dict[Path, bool] = {}
        self._members: dict[Path, bool] = {}
        self._projects: dict[Path, Path | None] = {}
        self._roots: dict[Path, ImportRoot] = {}
        self._tests: dict[Path, bool] = {}

    # -- folders --

    def is_package(self, folder: Path) -> bool:
        """A regular package: a folder with ``__init__.py``."""
        if folder not in self._packages:
            self._packages[folder] = (folder / "__init__.py").is_file()
        return self._packages[folder]

    def _member(self, folder: Path) -> bool:
        """Is ``folder`` part of a package chain: a package, or a namespace portion below one
        (``services/email_service/api`` without ``__init__.py`` in a ``services`` package)?"""
        if folder not in self._members:
            self._members[folder] = self.is_package(folder) or (
                folder.name != _LAYOUT_FOLDER and folder != self.repo_root
                and folder.is_relative_to(self.repo_root) and self._member(folder.parent))
        return self._members[folder]

    def reaches(self, root: Path, folder: Path) -> bool:
        """Can modules in ``folder`` be imported from ``root`` (every folder between is in a
        package chain; below a metadata root, PEP 420 namespace folders count too)?"""
        if not folder.is_relative_to(root):
            return False
        metadata = self._is_metadata_root(root)
        current = folder
        while current != root:
            if not (metadata or self._member(current)) or not current.name.isidentifier():
                return False
            current = current.parent
        return True

    def _is_metadata_root(self, root: Path) -> bool:
        project = self.project_of(root)
        return project is not None and root in self.distribution(project).roots

    # -- projects --

    def project_of(self, path: Path) -> Path | None:
        """The project ``path`` belongs to: the nearest folder at or above it (inside the
        repository) holding ``pyproject.toml``, ``setup.py`` or ``setup.cfg``."""
        folder = Path(os.path.abspath(path))
        if not folder.is_dir():
            folder = folder.parent
        if folder not in self._projects:
            found = None
            if any((folder / name).is_file() for name in PROJECT_FILES):
                found = folder
            elif folder != self.repo_root and folder.parent != folder and (
                    folder.parent.is_relative_to(self.repo_root)):
                found = self.project_of(folder.parent)
            self._projects[folder] = found
        return self._projects[folder]

    def distribution(self, project: Path) -> Distribution:
        """What ``project``'s metadata says it ships."""
        return _distribution(project, _stamp(project))

    # -- import roots and module names --

    def root_of(self, path: Path) -> ImportRoot:
        """The import root of the file ``path``."""
        folder = Path(os.path.abspath(path)).parent
        if folder not in self._roots:
            self._roots[folder] = self._find_root(folder)
        return self._roots[folder]

    def _find_root(self, folder: Path) -> ImportRoot:
        project = self.project_of(folder)
        if project is not None:
            shipped = self.distribution(project)
            for root in sorted(shipped.roots, key=lambda r: len(r.parts), reverse=True):
                if not folder.is_relative_to(root):
                    continue
                if folder != root and shipped.packages and not any(
                        folder.is_relative_to(package) for package in shipped.packages):
                    continue  # below the root, but in no package the distribution ships
                if self.reaches(root, folder):
                    return ImportRoot(root, self.project_of(root))
        current = folder
        while current.parent != current and self._member(current):
            current = current.parent
        return ImportRoot(current, self.project_of(current))

    def module_of(self, path: Path) -> str | None:
        """The dotted module the file ``path`` is imported as from its own import root."""
        path = Path(os.path.abspath(path))
        return _dotted(self.root_of(path).path, path)

    def package_name(self, folder: Path, root: Path) -> str | None:
        """The dotted name of the package ``folder`` imported from ``root`` (None: unreachable)."""
        if folder == root or not self.reaches(root, folder):
            return None
        return ".".join(folder.relative_to(root).parts)

    def shipped_packages(self, project: Path) -> tuple[Path, ...]:
        """The top-level packages an installable project puts on ``sys.path`` when installed
        (none for a project that is not installable): its listed packages, else the packages
        in its roots, else (flat layout) the packages directly in its folder."""
        shipped = self.distribution(project)
        if not shipped.installable:
            return ()
        if shipped.packages:
            return shipped.packages
        found: list[Path] = []
        for base in shipped.roots or (project,):
            found.extend(child for child in subfolders(base)
                         if self.is_package(child) and child.name.isidentifier()
                         and not is_test_name(child.name))
        return tuple(found)

    # -- tests --

    def is_test_folder(self, folder: Path) -> bool:
        """Is ``folder`` a test package or inside one (a ``tests``/``test``/``testing`` folder,
        or a folder holding ``conftest.py`` that is not a project's own folder)?"""
        folder = Path(os.path.abspath(folder))
        if folder not in self._tests:
            found = False
            if folder.is_relative_to(self.repo_root):
                found = is_test_name(folder.name) or (
                    folder != self.repo_root and (folder / "conftest.py").is_file()
                    and self.project_of(folder) != folder)
                if not found and folder != self.repo_root:
                    found = self.is_test_folder(folder.parent)
            self._tests[folder] = found
        return self._tests[folder]

    def is_test_file(self, path: Path) -> bool:
        """A test module (``test_*.py``, ``*_test.py``, ``conftest.py``) or a file in a test
        package."""
        path = Path(os.path.abspath(path))
        name = path.name
        return (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
                or self.is_test_folder(path.parent))


def _dotted(root: Path, path: Path) -> str | None:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


def subfolders(folder: Path) -> list[Path]:
    """The folders directly in ``folder``, sorted (none when it cannot be read)."""
    try:
        return sorted(child for child in folder.iterdir() if child.is_dir())
    except OSError:
        return []


# -- reading the metadata --

def _stamp(project: Path) -> tuple[float, ...]:
    """Modification times of a project's metadata files (a cache key that notices edits)."""
    stamps = []
    for name in PROJECT_FILES:
        try:
            stamps.append((project / name).stat().st_mtime)
        except OSError:
            stamps.append(-1.0)
    return tuple(stamps)


@lru_cache(maxsize=512)
def _distribution(project: Path, _stamp: tuple[float, ...]) -> Distribution:
    data = _toml(project / "pyproject.toml")
    tool = _table(data.get("tool"))
    roots: list[Path] = []
    packages: list[Path] = []
    for reader in (_hatch, _setuptools, _pdm, _poetry, _setup_cfg, _setup_py):
        found_roots, found_packages = reader(project, tool)
        roots.extend(found_roots)
        packages.extend(found_packages)
    declared = bool(roots)
    if not roots:
        src = project / _LAYOUT_FOLDER
        if src.is_dir() and not (src / "__init__.py").is_file() and any(
                (child / "__init__.py").is_file() for child in subfolders(src)):
            roots.append(src)
    name = _table(data.get("project")).get("name") or _table(tool.get("poetry")).get("name")
    pdm = _table(tool.get("pdm"))
    poetry = _table(tool.get("poetry"))
    installable = (
        (isinstance(name, str) or (project / "setup.py").is_file()
         or (project / "setup.cfg").is_file())
        and pdm.get("distribution") is not False and poetry.get("package-mode") is not False
    )
    return Distribution(
        project=project,
        name=name if isinstance(name, str) else None,
        installable=installable,
        roots=tuple(dict.fromkeys(Path(os.path.normpath(root)) for root in roots)),
        packages=tuple(dict.fromkeys(Path(os.path.normpath(p)) for p in packages)),
        declared=declared,
    )


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _table(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _inside(project: Path, relative: str) -> Path | None:
    """``project / relative`` when it stays inside the project (metadata is not trusted to)."""
    folder = Path(os.path.normpath(project / relative))
    return folder if folder.is_relative_to(project) else None


_Found = tuple[list[Path], list[Path]]  # import roots, top-level package folders


def _package_folders(project: Path, paths: Iterable[str]) -> _Found:
    """Roots and packages of a list of package folder paths (hatch, pdm ``includes``)."""
    roots, packages = [], []
    for relative in paths:
        if any(char in relative for char in "*?["):
            continue  # a glob of files, not a package folder
        folder = _inside(project, relative.rstrip("/"))
        if folder is not None and folder != project and folder.is_dir():
            roots.append(folder.parent)
            packages.append(folder)
    return roots, packages


def _hatch(project: Path, tool: Mapping[str, Any]) -> _Found:
    """``packages`` (each shipped under its folder name), else ``only-include`` with
    ``sources`` (prefixes stripped from the shipped paths: a list, or ``{"src" = ""}``)."""
    build = _table(_table(tool.get("hatch")).get("build"))
    wheel = _table(_table(build.get("targets")).get("wheel"))
    packages = _strings(wheel.get("packages") or build.get("packages"))
    if packages:
        return _package_folders(project, packages)
    sources = wheel.get("sources", build.get("sources"))
    prefixes = ([prefix for prefix, to in sources.items() if to == ""]
                if isinstance(sources, Mapping) else _strings(sources))
    roots = [root for root in (_inside(project, prefix) for prefix in prefixes)
             if root is not None and root.is_dir()]
    included = [folder for folder in (
        _inside(project, path.rstrip("/"))
        for path in _strings(wheel.get("only-include") or build.get("only-include")))
        if folder is not None and folder.is_dir()]
    found = [folder for folder in included if any(folder.parent == root for root in roots)]
    if not roots:
        return _package_folders(project, [str(f.relative_to(project)) for f in included])
    return roots, found


def _found_packages(root: Path, include: list[str], exclude: list[str]) -> list[Path]:
    return [child for child in subfolders(root)
            if (child / "__init__.py").is_file()
            and (not include or any(fnmatch.fnmatch(child.name, p) for p in include))
            and not any(fnmatch.fnmatch(child.name, p) for p in exclude)]


def _setuptools(project: Path, tool: Mapping[str, Any]) -> _Found:
    setuptools = _table(tool.get("setuptools"))
    return _setuptools_style(project, _table(setuptools.get("package-dir")),
                             setuptools.get("packages"))


def _setuptools_style(project: Path, package_dir: Mapping[str, Any], listed: object) -> _Found:
    roots: list[Path] = []
    packages: list[Path] = []
    base_name = package_dir.get("")
    base = _inside(project, base_name) if isinstance(base_name, str) else project
    if base is None:
        return roots, packages
    if isinstance(listed, list):
        for name in _strings(listed):
            top = name.split(".")[0]
            mapped = package_dir.get(top)
            folder = _inside(project, mapped) if isinstance(mapped, str) else base / top
            if folder is not None and folder.name == top and folder.is_dir():
                roots.append(folder.parent)
                packages.append(folder)
    elif isinstance(listed, Mapping) and isinstance(listed.get("find"), Mapping):
        find = listed["find"]
        for where in _strings(find.get("where")) or ["."]:
            root = _inside(project, where)
            if root is not None and root.is_dir():
                roots.append(root)
                packages.extend(_found_packages(root, _strings(find.get("include")),
                                                _strings(find.get("exclude"))))
    elif isinstance(base_name, str) and base != project:
        roots.append(base)
    return roots, packages


def _pdm(project: Path, tool: Mapping[str, Any]) -> _Found:
    build = _table(_table(tool.get("pdm")).get("build"))
    package_dir = build.get("package-dir")
    base = _inside(project, package_dir) if isinstance(package_dir, str) else None
    roots, packages = _package_folders(project, _strings(build.get("includes")))
    if base is not None:
        roots = [base if folder.is_relative_to(base) else root
                 for root, folder in zip(roots, packages, strict=True)] or [base]
        packages = [base / folder.relative_to(base).parts[0] if folder.is_relative_to(base)
                    and folder != base else folder for folder in packages]
    return roots, packages


def _poetry(project: Path, tool: Mapping[str, Any]) -> _Found:
    roots: list[Path] = []
    packages: list[Path] = []
    listed = _table(tool.get("poetry")).get("packages")
    for entry in listed if isinstance(listed, list) else ():
        entry = _table(entry)
        include = entry.get("include")
        origin = entry.get("from", "")
        if not isinstance(include, str) or not isinstance(origin, str):
            continue
        root = _inside(project, origin)
        if root is None or not root.is_dir():
            continue
        top = include.strip("/").split("/")[0]
        matched = [child for child in subfolders(root) if fnmatch.fnmatch(child.name, top)]
        if matched:
            roots.append(root)
            packages.extend(matched)
    return roots, packages


def _setup_cfg(project: Path, _tool: Mapping[str, Any]) -> _Found:
    path = project / "setup.cfg"
    if not path.is_file():
        return [], []
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return [], []
    options = parser["options"] if parser.has_section("options") else {}
    package_dir = _cfg_mapping(options.get("package_dir", ""))
    listed: object = None
    packages_value = options.get("packages", "").strip()
    if packages_value.startswith("find"):
        where = (parser.get("options.packages.find", "where", fallback=".").split() or ["."])
        listed = {"find": {"where": where}}
    elif packages_value:
        listed = packages_value.replace(",", " ").split()
    return _setuptools_style(project, package_dir, listed)


def _cfg_mapping(text: str) -> dict[str, str]:
    """``package_dir`` of setup.cfg: ``=src`` or lines ``name = folder``."""
    mapping = {}
    for line in text.replace(";", "\n").splitlines():
        name, equals, folder = line.partition("=")
        if equals:
            mapping[name.strip()] = folder.strip()
    return mapping


def _setup_py(project: Path, _tool: Mapping[str, Any]) -> _Found:
    """Literal ``package_dir=`` and ``find_packages(where)`` in ``setup.py`` (nothing is run)."""
    path = project / "setup.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return [], []
    package_dir: dict[str, str] = {}
    listed: object = None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg == "package_dir":
                try:
                    value = ast.literal_eval(keyword.value)
                except ValueError:
                    continue
                if isinstance(value, dict):
                    package_dir = {str(k): str(v) for k, v in value.items()}
            elif keyword.arg == "packages":
                if isinstance(keyword.value, ast.Call):
                    where = _where(keyword.value)
                    if where is not None:
                        listed = {"find": {"where": [where]}}
                else:
                    try:
                        value = ast.literal_eval(keyword.value)
                    except ValueError:
                        continue
                    if isinstance(value, list | tuple):
                        listed = [str(item) for item in value]
    return _setuptools_style(project, package_dir, listed)


def _where(call: ast.Call) -> str | None:
    """The folder of a literal ``find_packages("src")`` / ``find_packages(where="src")``."""
    arguments = [*call.args[:1], *(k.value for k in call.keywords if k.arg == "where")]
    for argument in arguments:
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            return argument.value
    return None if arguments else "."
