"""Where codemods find the tracing kit, and vendoring the kit into repos that have none.

Codemods need the kit's import path for a file before the kit exists, so ``KitResolver``
decides it per file from the packaging metadata (``scaffold.repo.packaging``): the ``kit``
named in ``[tool.scaffold]`` (a shared location; reported, not imported, for a file whose
import root does not reach it), else a kit already in a package on the file's own package
chain (a ``tracekit`` package with ``threads.py``, rendered by Copier or vendored earlier),
else the planned location: ``tracekit`` in the outermost package of that chain that lies in
the file's project (the folder of its nearest ``pyproject.toml``/``setup.py``), is no test
package and holds no other project. ``services/orders/...`` imported as
``services.orders...`` with its own pyproject gets ``services/orders/tracekit``; a
``libs/x/src/x/...`` library gets ``libs/x/src/x/tracekit``. A file with no such place gets
no kit; its sites are reported and one ``vendored-kit`` finding per project says why.
Retrofit writes a kit only where a rewritten file that uses it imports it
(``KitResolver.vendor``), and never under ``--check``/``--diff``, which report the files it
would write instead.

Every vendored module starts with the ownership header of ``scaffold.emitted`` (the scaffold
version, the kit template it came from, a hash of the rest of the file). A later run updates
an unmodified copy when the kit changed, refuses (``KitEdited``, exit 2) to overwrite a copy
someone edited unless forced, and leaves an edited copy alone while there is nothing new to
deliver. The engine never rewrites or reports inside a file
with that header.

What the rewritten code then imports is added to the project's declared dependencies by
``scaffold.dependencies``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scaffold import __version__
from scaffold.emitted import Header, parse, stamp, write_text
from scaffold.engine.discovery import SKIPPED_DIRS, Target
from scaffold.engine.model import (
    NO_KIT_MESSAGE,
    FileResult,
    Finding,
    Kind,
    Status,
    is_vendored,
)
from scaffold.errors import UsageError
from scaffold.kit import KIT_TEMPLATE_DIR, TEMPLATE_SUFFIX, kit_sources
from scaffold.kit_api import KIT_PACKAGE
from scaffold.repo.packaging import PROJECT_FILES, Packaging, subfolders

_HEADER_BYTES = 256  # enough of a file's start to tell a vendored kit module by its header
KIT_MARKER = "threads.py"  # a rendered kit is recognised by its threads module
VENDORED_KIT_RULE = "vendored-kit"  # the rule id on the sites that report kit files


class KitEdited(UsageError):
    """A vendored kit was edited by hand and the run would overwrite it (exit 2)."""


@dataclass(frozen=True)
class KitLocation:
    """A kit package: its import path (``orders.tracekit``) and its folder on disk."""

    import_path: str
    folder: Path

    @property
    def package_name(self) -> str:
        """The package the kit lives in: the template variable ``package_name``."""
        return self.import_path.rpartition(".")[0]


def vendored_sources(location: KitLocation, kit_version: str = __version__) -> dict[str, str]:
    """The kit as retrofit writes it at ``location``: file name -> text with the header."""
    rendered = kit_sources(package_name=location.package_name, kit_version=kit_version)
    return {
        name: stamp(body, f"{KIT_TEMPLATE_DIR}/{name}{TEMPLATE_SUFFIX}", kit_version)
        for name, body in rendered.items()
    }


def write_vendored_kit(location: KitLocation, kit_version: str = __version__) -> list[Path]:
    """Write the whole kit at ``location`` (library use; retrofit goes through ``vendor``)."""
    written = []
    for name, text in vendored_sources(location, kit_version).items():
        write_text(location.folder / name, text)
        written.append(location.folder / name)
    return written


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


_IMPORTED = re.compile(r"(?m)^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import\b|import[ \t]+([\w.]+))")


def _imported_modules(text: str) -> set[str]:
    """The absolute modules ``text`` imports at the start of a line (one scan per file: a
    monorepo plans dozens of kits, and matching each against every rewritten file was the
    slowest step of a large run)."""
    return {match.group(1) or match.group(2) for match in _IMPORTED.finditer(text)}


def _imports(modules: set[str], import_path: str) -> bool:
    """Do ``modules`` include ``import_path`` or a module under it?"""
    return import_path in modules or any(
        module.startswith(import_path + ".") for module in modules)


@dataclass(frozen=True)
class _FileState:
    """One vendored module compared with what this scaffold renders."""

    name: str
    current: str | None  # None: missing
    fresh: str
    edited: bool  # differs from what retrofit wrote (or was not written by it)
    version: str | None  # kit version in its header


@dataclass(frozen=True)
class _Placement:
    """Where one folder's files import the kit from: a kit import path, or why there is none."""

    kit: str | None
    location: KitLocation | None = None  # a kit to vendor (None: exists, or none)
    reason: str | None = None  # why there is no safe place for a kit (kit is None)


class KitResolver:
    """The kit import path for each file of a run, and vendoring where rewrites need it.

    The kit of a file lives in the file's own project (the folder of its nearest
    ``pyproject.toml``/``setup.py``: the service or distribution), in a package the file's
    import root reaches (``scaffold.repo.packaging``), so ``from <package>.tracekit import ...``
    resolves where the file runs. Never in a test package, never in a folder that holds other
    projects or lies above the file's project (``services/`` when services are
    ``services/<name>/``): a file with no such place gets no kit, and is reported.
    """

    def __init__(self, targets: Sequence[Target], kit_version: str = __version__) -> None:
        self._targets = [t for t in targets if t.skip_reason is None]
        self._kit_version = kit_version
        self._packaging = Packaging(_repo_root(self._targets))
        self._projects = frozenset(
            project for project in {self._packaging.project_of(t.path) for t in self._targets}
            if project is not None)
        self._planned: dict[Path, KitLocation] = {}  # folder -> the kit to write there
        self._users: dict[Path, set[Path]] = {}  # planned kit folder -> files importing it
        self._unplaced: dict[Path, str] = {}  # file -> why it has no kit
        self._paths = {t.display: t.path for t in self._targets}
        # per-folder caches: a run asks about every file, and files share folders
        self._kits: dict[Path, bool] = {}
        self._placements: dict[Path, _Placement] = {}
        self._holding: dict[Path, bool] = {}
        self._configured: dict[tuple[str, Path], tuple[KitLocation, Path] | None] = {}

    # -- per-file resolution --

    def kit_for(self, target: Target) -> str | None:
        """The kit ``target``'s rewrites import: configured > existing > planned (None: none).

        A test file (``Target.test``) gets only a kit that is already there (or a configured
        one installed elsewhere): no kit is ever planned, so none is written, for a test's sake.
        """
        plan = not target.test
        configured = target.config.kit
        if configured:
            return self._configured_kit(target, configured, plan=plan)
        folder = target.path.parent
        if folder not in self._placements:
            self._placements[folder] = self._place(folder)
        placement = self._placements[folder]
        if placement.location is not None:
            if not plan:
                return None  # a kit that is only planned is never written for a test
            self._use(placement.location, target.path)
        if placement.kit is None and placement.reason is not None:
            self._unplaced[target.path] = placement.reason
        return placement.kit

    def unplaced(self, target: Target) -> str | None:
        """Why ``target`` has no kit (None: it has one, or was not asked about)."""
        return self._unplaced.get(target.path)

    def _use(self, location: KitLocation, path: Path) -> None:
        self._planned.setdefault(location.folder, location)
        self._users.setdefault(location.folder, set()).add(path)

    def _place(self, folder: Path) -> _Placement:
        """The kit of the files in ``folder``: an existing kit, else the planned location."""
        packaging = self._packaging
        root = packaging.root_of(folder / "__init__.py").path
        project = packaging.project_of(folder)
        chain = [above for above in (folder, *folder.parents)
                 if above != root and above.is_relative_to(root)][::-1]  # outermost first
        homes = [package for package in chain if self._why_not_home(package, project) is None]
        if homes:
            for home in homes:
                if self._is_kit(home / KIT_PACKAGE):
                    return _Placement(self._kit_name(home, root))
            home = homes[0]
            for sibling in subfolders(home.parent):
                if (sibling != home and packaging.is_package(sibling)
                        and self._is_kit(sibling / KIT_PACKAGE)
                        and self._why_not_home(sibling, project) is None):
                    return _Placement(self._kit_name(sibling, root))
            return self._plan(home, self._kit_name(home, root))
        # in no package that may hold it: the one package of its project it can import
        candidates = self._reachable(root, project)
        # among several candidates, a kit retrofit vendored for one package's own files must
        # not decide: the first run saw none there, so a second run would differ from it
        kits = [(package, name) for package, name in candidates
                if self._is_kit(package / KIT_PACKAGE) and not (
                    len(candidates) > 1
                    and _starts_vendored(package / KIT_PACKAGE / "__init__.py"))]
        if len(kits) == 1:
            return _Placement(kits[0][1])
        if not kits and len(candidates) == 1:
            return self._plan(*candidates[0])
        if kits or candidates:
            names = ", ".join(name for _, name in kits or candidates)
            return _Placement(None, reason=f"several packages its import root "
                              f"({self._folder(root)}) reaches could hold it ({names})")
        if chain:
            why = self._why_not_home(chain[0], project)
            return _Placement(None, reason=f"{self._folder(chain[0])} {why}, and no other "
                              "package of its project is importable from its import root")
        return _Placement(None, reason=f"no package of its project is importable from its "
                          f"import root ({self._folder(root)})")

    def _why_not_home(self, package: Path, project: Path | None) -> str | None:
        """Why the kit may not live in ``package`` (None: it may)."""
        if package.name == KIT_PACKAGE or not package.name.isidentifier():
            return "is no package to hold a kit"
        if self._packaging.is_test_folder(package):
            return "is a test package"
        if project is not None and not package.is_relative_to(project):
            return f"is outside the file's project ({self._folder(project)})"
        shipped = self._packaging.distribution(project).roots if project is not None else ()
        if shipped and not any(package.is_relative_to(root) and package != root
                               for root in shipped):
            return "is in no package its project's distribution ships"
        if package != project and self._holds_projects(package):
            return "holds other projects"
        return None

    def _holds_projects(self, package: Path) -> bool:
        """Is there a project folder below ``package`` (a run's file in it, or on disk)?"""
        if package not in self._holding:
            self._holding[package] = any(
                other != package and other.is_relative_to(package) for other in self._projects
            ) or _project_below(package)
        return self._holding[package]

    def _kit_name(self, package: Path, root: Path) -> str:
        name = self._packaging.package_name(package, root)
        assert name is not None  # only asked for packages in the chain below root
        return f"{name}.{KIT_PACKAGE}"

    def _plan(self, home: Path, import_path: str) -> _Placement:
        folder = home / KIT_PACKAGE
        if folder.exists():  # something else is called tracekit here: never vendor over it
            return _Placement(None, reason=f"{self._folder(folder)} exists and is not the "
                              "tracing kit")
        return _Placement(import_path, KitLocation(import_path, folder))

    def _reachable(self, root: Path, project: Path | None) -> list[tuple[Path, str]]:
        """Packages that may hold the kit of a file in ``root`` itself: the packages in its
        import root, and those its project installs."""
        packaging = self._packaging
        found: dict[Path, str] = {
            child: child.name for child in subfolders(root) if packaging.is_package(child)}
        if project is not None:
            shipped = packaging.distribution(project)
            for package in packaging.shipped_packages(project):
                own = packaging.root_of(package / "__init__.py").path
                name = packaging.package_name(package, own)
                if name is not None and (own in shipped.roots or own == project):
                    found.setdefault(package, name)
        return [(package, f"{name}.{KIT_PACKAGE}") for package, name in sorted(found.items())
                if self._why_not_home(package, project) is None]

    def _is_kit(self, folder: Path) -> bool:
        """A kit package: rendered (``threads.py``) or vendored (any module with the header)."""
        if folder not in self._kits:
            self._kits[folder] = folder.is_dir() and (
                (folder / KIT_MARKER).is_file()
                or any(_starts_vendored(path) for path in folder.glob("*.py"))
            )
        return self._kits[folder]

    # -- a configured kit --

    def _configured_kit(self, target: Target, configured: str, *, plan: bool) -> str | None:
        """A configured kit, unless it is in the tree where ``target`` cannot import it."""
        key = (configured, target.config.root)
        if key not in self._configured:
            self._configured[key] = self._configured_location(*key)
        found = self._configured[key]
        if found is None:
            return configured  # not in the tree: an installed library, trust the config
        location, root = found
        own = self._packaging.root_of(target.path).path
        if own != root and not self._installed(location, root):
            self._unplaced[target.path] = (
                f"the configured kit {configured} is in {self._folder(root)}, which its "
                f"import root ({self._folder(own)}) does not reach")
            return None
        if not self._is_kit(location.folder):
            if not plan:
                return None
            self._use(location, target.path)
        return configured

    def _installed(self, location: KitLocation, root: Path) -> bool:
        """Is the kit's top-level package one an installable project puts on sys.path?"""
        top = root / location.import_path.split(".")[0]
        project = self._packaging.project_of(top)
        return project is not None and top in self._packaging.shipped_packages(project)

    def _configured_location(self, import_path: str,
                             config_root: Path) -> tuple[KitLocation, Path] | None:
        """Where a configured kit is in the tree, and the import root it is imported from
        (None: not here, e.g. an installed library)."""
        parts = import_path.split(".")
        if len(parts) < 2 or parts[-1] != KIT_PACKAGE:
            return None  # only a package named tracekit is ever vendored
        packaging = self._packaging
        roots = {config_root, config_root / "src"}
        roots |= {packaging.root_of(target.path).path for target in self._targets}
        for project in self._projects:
            roots |= set(packaging.distribution(project).roots)
        for root in sorted(roots, key=lambda r: (len(r.parts), r)):
            folder = root.joinpath(*parts)
            if packaging.is_package(folder.parent) and packaging.reaches(root, folder.parent):
                return KitLocation(import_path, folder), root
        return None

    # -- vendoring --

    def _vendored_locations(self) -> list[KitLocation]:
        """Vendored kits among the run's files."""
        folders = sorted({
            t.path.parent for t in self._targets
            if t.path.parent.name == KIT_PACKAGE and _starts_vendored(t.path)
        })
        locations = []
        for folder in folders:
            root = self._packaging.root_of(folder / "__init__.py").path
            name = self._packaging.package_name(folder, root)
            if name is not None:
                locations.append(KitLocation(name, folder))
        return locations

    def _states(self, location: KitLocation) -> list[_FileState]:
        states = []
        for name, fresh in vendored_sources(location, self._kit_version).items():
            current = _read(location.folder / name)
            edited, version = False, None
            if current is not None:
                header, body = parse(current)
                edited = header is None or not header.matches(body)
                version = header.version if header else None
            states.append(_FileState(name, current, fresh, edited, version))
        return states

    def refuse_edited(self, *, force: bool = False) -> None:
        """Raise ``KitEdited`` when an update would overwrite a vendored kit edited by hand."""
        if force:
            return
        for location in self._vendored_locations():
            edited = [
                state.name for state in self._states(location)
                if state.edited and _pending(state)
                and parse(state.current or "")[1] != parse(state.fresh)[1]
            ]
            if edited:
                raise KitEdited(
                    f"vendored kit {self._display(location.folder)} was edited "
                    f"({', '.join(edited)}); not replacing it with the scaffold "
                    f"{self._kit_version} kit: rerun with --force to overwrite the edits, or "
                    "move them out of tracekit/"
                )

    def vendor(
        self, results: Iterable[FileResult], *, write: bool, force: bool = False
    ) -> list[FileResult]:
        """Write the kits the rewritten files import, update outdated vendored kits.

        Returns one CHANGED result per kit file written (or, without ``write``, that would be).
        """
        results = list(results)
        written: list[FileResult] = []
        for location in self._needed(results):
            for name, text in vendored_sources(location, self._kit_version).items():
                written.append(self._emit(location.folder / name, None, text,
                                          "new: imported by the rewritten code", write))
        for location in self._vendored_locations():
            for state in self._states(location):
                if state.current == state.fresh:
                    continue
                if state.current is None:
                    note = "new module of the vendored kit"
                elif state.edited:
                    if not force:
                        continue  # refuse_edited let it through: nothing new to deliver
                    note = "replaces local edits (--force)"
                else:
                    note = f"update from kit {state.version}"
                written.append(self._emit(location.folder / state.name, state.current,
                                          state.fresh, note, write))
        return written + self._unplaced_notes(results)

    def _needed(self, results: Sequence[FileResult]) -> list[KitLocation]:
        """The planned kits that a CHANGED file using them imports."""
        imported: dict[Path, set[str]] = {}  # file -> the modules it imports after the run
        for result in results:
            path = self._paths.get(result.path)
            if path is not None and result.status is Status.CHANGED and result.updated:
                imported[path] = _imported_modules(result.updated)
        return [location for folder, location in sorted(self._planned.items())
                if any(_imports(imported.get(user, set()), location.import_path)
                       for user in self._users.get(folder, ()))]

    def _unplaced_notes(self, results: Sequence[FileResult]) -> list[FileResult]:
        """One finding per project whose files reported sites needing a kit but have no safe
        place for one: why, and the way out (``kit`` in [tool.scaffold])."""
        reasons: dict[Path | None, dict[str, list[str]]] = {}
        for result in results:
            path = self._paths.get(result.path)
            reason = self._unplaced.get(path) if path is not None else None
            if reason is None or not any(f.kind is Kind.FINDING
                                         and f.message.startswith(NO_KIT_MESSAGE)
                                         for f in result.findings):
                continue
            project = self._packaging.project_of(path) if path is not None else None
            reasons.setdefault(project, {}).setdefault(reason, []).append(result.path)
        notes: list[FileResult] = []
        for project, by_reason in sorted(reasons.items(), key=lambda item: str(item[0])):
            files = sorted(display for shown in by_reason.values() for display in shown)
            manifest = _manifest_file(project)
            where = self._display(manifest) if manifest is not None else files[0]
            named = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3
                                            else "")
            message = (f"no safe place to vendor the tracing kit for {named}: "
                       f"{'; '.join(sorted(by_reason))}; their sites that need the kit are "
                       "reported, not rewritten: set kit = \"<package>.tracekit\" in "
                       "[tool.scaffold] to a package they import")
            finding = Finding(where, 1, 1, VENDORED_KIT_RULE, message)
            notes.append(FileResult(where, Status.UNCHANGED, (finding,)))
        return notes

    def _emit(self, path: Path, current: str | None, text: str, note: str,
              write: bool) -> FileResult:
        display = self._display(path)
        if write:
            try:
                write_text(path, text)
            except OSError as exc:
                return FileResult(display, Status.FAILED,
                                  reason=f"cannot write the kit: {exc.strerror or exc}")
        finding = Finding(display, 1, 1, VENDORED_KIT_RULE,
                          f"tracing kit module of scaffold {self._kit_version}, {note}",
                          Kind.CHANGE)
        return FileResult(display, Status.CHANGED, (finding,), original=current or "",
                          updated=text)

    def _folder(self, folder: Path) -> str:
        """A folder as the run shows files (``.`` for the folder the PATH argument names)."""
        shown = self._display(folder / "__init__.py")
        return shown.removesuffix("__init__.py").removesuffix("/") or "."

    def _display(self, path: Path) -> str:
        """``path`` as the run shows files: under the PATH argument of a file beside it."""
        for target in self._targets:
            try:
                common = Path(os.path.commonpath([target.path, path]))
                tail = target.path.relative_to(common).as_posix()
            except ValueError:
                continue
            shown = Path(target.display).as_posix()
            if shown == tail:
                return path.relative_to(common).as_posix()
            if shown.endswith("/" + tail):
                return shown[: -len(tail)] + path.relative_to(common).as_posix()
        return str(path)


def _repo_root(targets: Sequence[Target]) -> Path:
    """The top of the repository the targets are in: the folder with ``.git``, else the
    outermost folder above them holding a project file (a run on one service of a monorepo
    still sees the monorepo)."""
    if not targets:
        return Path.cwd()
    common = Path(os.path.commonpath([t.path.parent for t in targets]))
    top = common
    for folder in (common, *common.parents):
        if (folder / ".git").exists():
            return folder
        if any((folder / name).is_file() for name in PROJECT_FILES):
            top = folder
    return top


def _project_below(folder: Path) -> bool:
    """Does a folder below ``folder`` hold a ``pyproject.toml``/``setup.py``/``setup.cfg``?"""
    for current, folders, files in os.walk(folder):
        folders[:] = [name for name in folders
                      if name not in SKIPPED_DIRS and not name.startswith(".")]
        if current != str(folder) and any(name in PROJECT_FILES for name in files):
            return True
    return False


def _manifest_file(project: Path | None) -> Path | None:
    if project is None:
        return None
    return next((project / name for name in PROJECT_FILES if (project / name).is_file()), None)


def _pending(state: _FileState) -> bool:
    """Does this scaffold's kit differ from the one the header says was written?"""
    if state.current is None:
        return True
    header: Header | None = parse(state.current)[0]
    return header is None or not header.matches(parse(state.fresh)[1])


def _starts_vendored(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return is_vendored(handle.read(_HEADER_BYTES))
    except OSError:
        return False
