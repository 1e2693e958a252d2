"""Where codemods find the tracing kit, and vendoring the kit into repos that have none.

Codemods need the kit's import path for a file before the kit exists, so ``KitResolver``
decides it per file: the ``kit`` named in ``[tool.scaffold]`` (a shared location), else a kit
already in the file's import root (a ``tracekit`` package with ``threads.py``, rendered by
Copier or vendored earlier), else the planned location ``<root package>/tracekit``. In a
monorepo every import root gets its own. Retrofit writes a kit only where a rewritten file
imports it (``KitResolver.vendor``), and never under ``--check``/``--diff``, which report the
files it would write instead.

Every vendored module starts with a header naming the kit version and a hash of the rest of
the file. A later run updates an unmodified copy when the kit changed, refuses (``KitEdited``,
exit 2) to overwrite a copy someone edited unless forced, and leaves an edited copy alone
while there is nothing new to deliver. The engine never rewrites or reports inside a file
with that header.

What the rewritten code then imports is added to the project's declared dependencies by
``scaffold.dependencies``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scaffold import __version__
from scaffold.engine.discovery import Target
from scaffold.engine.model import FileResult, Finding, Kind, Status
from scaffold.kit import KIT_PACKAGE, kit_sources

HEADER_PREFIX = "# Vendored by scaffold retrofit from kit "
_HEADER = re.compile(
    re.escape(HEADER_PREFIX) + r"(?P<version>\S+) \(sha256:(?P<digest>[0-9a-f]{32})\)"
)
_DIGEST_CHARS = 32  # 128 bits: plenty to tell an edited copy from the one written
KIT_MARKER = "threads.py"  # a rendered kit is recognised by its threads module
VENDORED_KIT_RULE = "vendored-kit"  # the rule id on the sites that report kit files
# Root packages that hold tests, never the service's code: the kit does not belong there.
_NOT_KIT_HOMES = frozenset({"tests", "test", "testing"})


class KitEdited(Exception):
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


def is_vendored(source: bytes) -> bool:
    """Does this file start with the vendored-kit header?"""
    return source.startswith(HEADER_PREFIX.encode())


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:_DIGEST_CHARS]


def _split(text: str) -> tuple[re.Match[str] | None, str]:
    """The header match (None without one) and the text below the header line."""
    first, _, rest = text.partition("\n")
    match = _HEADER.match(first)
    return (match, rest) if match else (None, text)


def vendored_sources(location: KitLocation, kit_version: str = __version__) -> dict[str, str]:
    """The kit as retrofit writes it at ``location``: file name -> text with the header."""
    rendered = kit_sources(package_name=location.package_name, kit_version=kit_version)
    return {
        name: f"{HEADER_PREFIX}{kit_version} (sha256:{_digest(body)})\n{body}"
        for name, body in rendered.items()
    }


def write_vendored_kit(location: KitLocation, kit_version: str = __version__) -> list[Path]:
    """Write the whole kit at ``location`` (library use; retrofit goes through ``vendor``)."""
    written = []
    for name, text in vendored_sources(location, kit_version).items():
        _write(location.folder / name, text)
        written.append(location.folder / name)
    return written


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically (temp file + rename), keeping its mode if it existed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _is_package(folder: Path) -> bool:
    return (folder / "__init__.py").is_file()


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


class KitResolver:
    """The kit import path for each file of a run, and vendoring where rewrites need it."""

    def __init__(self, targets: Sequence[Target], kit_version: str = __version__) -> None:
        self._targets = [t for t in targets if t.skip_reason is None]
        self._kit_version = kit_version
        self._planned: dict[str, KitLocation] = {}  # import path -> where it would be written
        # per-folder caches: a run asks about every file, and files share folders
        self._root_packages: dict[Path, Path | None] = {}
        self._kits: dict[Path, bool] = {}
        self._package_lists: dict[Path, list[Path]] = {}
        self._outside: dict[Path, str | None] = {}
        self._of_package: dict[Path, str | None] = {}
        self._configured: dict[tuple[str, Path], KitLocation | None] = {}

    # -- per-file resolution --

    def kit_for(self, target: Target) -> str | None:
        """The kit ``target``'s rewrites import: configured > existing > planned (None: none)."""
        configured = target.config.kit
        if configured:
            key = (configured, target.config.root)
            if key not in self._configured:
                self._configured[key] = self._configured_location(*key)
            location = self._configured[key]
            if location is not None and not self._is_kit(location.folder):
                self._planned[configured] = location
            return configured
        package = self._root_package(target.path.parent)
        if package is not None and package.name not in _NOT_KIT_HOMES:
            if package not in self._of_package:
                self._of_package[package] = self._kit_of_import_root(package)
            return self._of_package[package]
        folder = target.path.parent
        if folder not in self._outside:
            self._outside[folder] = self._kit_outside_packages(folder)
        return self._outside[folder]

    def _root_package(self, folder: Path) -> Path | None:
        """The outermost package folder holding ``folder`` (None outside packages)."""
        if folder not in self._root_packages:
            found = None
            if _is_package(folder):
                found = folder
                while _is_package(found.parent) and found.parent != found:
                    found = found.parent
            self._root_packages[folder] = found
        return self._root_packages[folder]

    def _is_kit(self, folder: Path) -> bool:
        """A kit package: rendered (``threads.py``) or vendored (any module with the header)."""
        if folder not in self._kits:
            self._kits[folder] = folder.is_dir() and (
                (folder / KIT_MARKER).is_file()
                or any(_starts_vendored(path) for path in folder.glob("*.py"))
            )
        return self._kits[folder]

    def _packages(self, folder: Path) -> list[Path]:
        """Packages directly in ``folder`` or its ``src/`` that may hold the kit."""
        if folder in self._package_lists:
            return self._package_lists[folder]
        found: list[Path] = []
        for base in (folder, folder / "src"):
            try:
                children = sorted(base.iterdir())
            except OSError:
                continue
            found.extend(
                child for child in children
                if child.is_dir() and child.name not in _NOT_KIT_HOMES and _is_package(child)
            )
        self._package_lists[folder] = found
        return found

    def _kit_of_import_root(self, package: Path) -> str | None:
        """The package's own kit, else one beside it in its import root, else the plan."""
        own = package / KIT_PACKAGE
        if self._is_kit(own):
            return f"{package.name}.{KIT_PACKAGE}"
        for sibling in self._packages(package.parent):
            if sibling.parent == package.parent and self._is_kit(sibling / KIT_PACKAGE):
                return f"{sibling.name}.{KIT_PACKAGE}"
        if own.exists():
            return None  # something else is called tracekit here: never vendor over it
        import_path = f"{package.name}.{KIT_PACKAGE}"
        self._planned.setdefault(import_path, KitLocation(import_path, own))
        return import_path

    def _kit_outside_packages(self, folder: Path) -> str | None:
        """A script or test outside any package: the kit of the one package of its service."""
        service_root = next(
            (above for above in (folder, *folder.parents) if (above / "pyproject.toml").is_file()),
            folder,
        )
        for level in (folder, *folder.parents):
            packages = self._packages(level)
            kits = [p for p in packages if self._is_kit(p / KIT_PACKAGE)]
            if kits:
                return f"{kits[0].name}.{KIT_PACKAGE}"
            if len(packages) == 1:
                return self._kit_of_import_root(packages[0])
            if packages or level == service_root:
                return None  # several candidates, or the service ends here: no guess
        return None

    def _configured_location(self, import_path: str, config_root: Path) -> KitLocation | None:
        """Where a configured kit is in the tree (None: not here, e.g. an installed library)."""
        parts = import_path.split(".")
        if len(parts) < 2 or parts[-1] != KIT_PACKAGE:
            return None  # only a package named tracekit is ever vendored
        roots = {config_root / parts[0], config_root / "src" / parts[0]}
        for target in self._targets:
            package = self._root_package(target.path.parent)
            if package is not None and package.name == parts[0]:
                roots.add(package)
        for root in sorted(roots):
            folder = root.joinpath(*parts[1:])
            if _is_package(folder.parent):
                return KitLocation(import_path, folder.resolve())
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
            package = self._root_package(folder)
            if package is None:
                continue
            parts = folder.relative_to(package.parent).parts
            locations.append(KitLocation(".".join(parts), folder))
        return locations

    def _states(self, location: KitLocation) -> list[_FileState]:
        states = []
        for name, fresh in vendored_sources(location, self._kit_version).items():
            current = _read(location.folder / name)
            edited, version = False, None
            if current is not None:
                match, body = _split(current)
                edited = match is None or _digest(body) != match["digest"]
                version = match["version"] if match else None
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
                and _split(state.current or "")[1] != _split(state.fresh)[1]
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
        imported = set().union(*(_imported_modules(r.updated) for r in results
                                 if r.status is Status.CHANGED and r.updated))
        needed = sorted(
            import_path for import_path in self._planned if _imports(imported, import_path))
        written: list[FileResult] = []
        for import_path in needed:
            location = self._planned[import_path]
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
        return written

    def _emit(self, path: Path, current: str | None, text: str, note: str,
              write: bool) -> FileResult:
        display = self._display(path)
        if write:
            try:
                _write(path, text)
            except OSError as exc:
                return FileResult(display, Status.FAILED,
                                  reason=f"cannot write the kit: {exc.strerror or exc}")
        finding = Finding(display, 1, 1, VENDORED_KIT_RULE,
                          f"tracing kit module of scaffold {self._kit_version}, {note}",
                          Kind.CHANGE)
        return FileResult(display, Status.CHANGED, (finding,), original=current or "",
                          updated=text)

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


def _pending(state: _FileState) -> bool:
    """Does this scaffold's kit differ from the one the header says was written?"""
    if state.current is None:
        return True
    match, _ = _split(state.current)
    return match is None or _digest(_split(state.fresh)[1]) != match["digest"]


def _starts_vendored(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return is_vendored(handle.read(len(HEADER_PREFIX)))
    except OSError:
        return False
