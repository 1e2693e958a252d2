"""Declared dependencies: what rewritten code now imports, added to what its project declares.

Why: a rewrite that imports ``opentelemetry`` (directly, or through the kit) into a project
that does not depend on it makes the module unimportable, and every service importing it
with it. So after the codemods ran, each rewritten file's new imports are turned into the
distributions they need, and the ones its project does not already get are added to the
dependency list that project declares, keeping the file's formatting, comments and order.

What a rewritten file needs, from what it imports:

- the kit's ``threads`` helpers: nothing (the standard library);
- the rest of the kit, or ``opentelemetry.*`` API modules: ``opentelemetry-api`` only;
- the kit's tracing set-up (``init_tracing``) or its test support: the SDK, the OTLP gRPC
  exporter, the semantic conventions and the baggage processor as well;
- anything else (the configured helper library, the repo's own modules): nothing new; the
  helper library is the repo's own or already a dependency of it.

A distribution counts as already there when the project declares it, declares one that
depends on it (``opentelemetry-sdk`` brings the API), or declares a first-party library of
the same repository that does (a service declaring the monorepo's shared library). What is
added is a lower bound the kit works with (``opentelemetry-api>=1.20.0``), never a pin, and
only when the versions the project already locks or pins (``pdm.lock``, ``poetry.lock``,
``uv.lock``, ``==`` pins in requirements files or its own dependencies) satisfy it;
otherwise the site is reported with the conflict and nothing is edited.

Manifests, nearest the file first: ``pyproject.toml`` with ``[project]`` (PEP 621, PDM;
``dependencies``, never a dev group) or ``[tool.poetry.dependencies]``, else
``requirements.in`` / ``requirements.txt`` / ``requirements/{base,main,prod}.txt``. The edit is
reported as a change (rule ``declared-dependencies``) that ``--check``/``--diff`` list and never
write; with ``--no-deps`` (or ``add-dependencies = false``) it stays a finding naming what to
add and where. A file whose project cannot be found or edited gets a finding.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import tomlkit
import tomlkit.exceptions
import tomlkit.items

from scaffold import DISTRIBUTION
from scaffold.engine.discovery import Target
from scaffold.engine.model import FileResult, Finding, Kind, Status, is_vendored
from scaffold.engine.writer import atomic_write
from scaffold.kit import kit_sources
from scaffold.kit_api import INIT_TRACING, KIT_PACKAGE, THREADS_MODULE

RULE = "declared-dependencies"
API = "opentelemetry-api"
# The oldest API the kit's library modules are proved on (tests/kit/test_api_only.py runs them
# in a venv holding only this version, and the pinned one): a floor, so a repo on any newer
# line keeps its version.
API_FLOOR = "1.20.0"
# Tracing set-up (init_tracing) needs what it builds the provider from. 1.27.0 / 0.48b0 is
# the release (semantic conventions 1.27) that brought deployment.environment.name, which
# build_resource writes; the SDK and contrib lines move in lockstep from there, so a project
# that sets tracing up needs the API from that line too (SETUP_API_FLOOR).
SETUP_API_FLOOR = "1.27.0"
SETUP_FLOORS: Mapping[str, str] = {
    "opentelemetry-sdk": "1.27.0",
    "opentelemetry-exporter-otlp-proto-grpc": "1.27.0",
    "opentelemetry-semantic-conventions": "0.48b0",
    "opentelemetry-processor-baggage": "0.48b0",
}
FLOORS: Mapping[str, str] = {API: API_FLOOR, **SETUP_FLOORS}


def floors_for(needed: Iterable[str]) -> dict[str, str]:
    """The lower bound of each needed distribution: the API's is raised to the set-up line
    when the SDK is needed as well (the SDK requires its own API version)."""
    needed = set(needed)
    floors = {name: FLOORS[name] for name in needed}
    if API in floors and needed & set(SETUP_FLOORS):
        floors[API] = SETUP_API_FLOOR
    return floors
_SETUP_NAMES = frozenset({INIT_TRACING})
_STDLIB_KIT_MODULES = frozenset({THREADS_MODULE})
_SETUP_KIT_MODULES = frozenset({"testing"})  # test support builds an SDK provider
# Distributions that depend on others (so declaring them brings those), as far as retrofit
# asks: every OpenTelemetry package here depends on the API.
_BRINGS: Mapping[str, frozenset[str]] = {
    "opentelemetry-sdk": frozenset({API, "opentelemetry-semantic-conventions"}),
    "opentelemetry-exporter-otlp": frozenset({
        "opentelemetry-exporter-otlp-proto-grpc", "opentelemetry-exporter-otlp-proto-http"}),
    "opentelemetry-exporter-otlp-proto-grpc": frozenset({API, "opentelemetry-sdk"}),
    "opentelemetry-exporter-otlp-proto-http": frozenset({API, "opentelemetry-sdk"}),
    "opentelemetry-processor-baggage": frozenset({API, "opentelemetry-sdk"}),
    "opentelemetry-semantic-conventions": frozenset({API}),
    "opentelemetry-distro": frozenset({API, "opentelemetry-sdk"}),
}
# Packages released in lockstep with the API: an ``==`` pin of one fixes the API's version.
_LOCKSTEP = frozenset({API, "opentelemetry-sdk", "opentelemetry-exporter-otlp",
                       "opentelemetry-exporter-otlp-proto-grpc",
                       "opentelemetry-exporter-otlp-proto-http",
                       "opentelemetry-exporter-otlp-proto-common", "opentelemetry-proto"})
_MODULE_DISTRIBUTIONS = (  # opentelemetry.<prefix> -> distribution; the rest is the API's
    ("opentelemetry.sdk", "opentelemetry-sdk"),
    ("opentelemetry.exporter.otlp.proto.grpc", "opentelemetry-exporter-otlp-proto-grpc"),
    ("opentelemetry.exporter.otlp.proto.http", "opentelemetry-exporter-otlp-proto-http"),
    ("opentelemetry.semconv", "opentelemetry-semantic-conventions"),
    ("opentelemetry.processor.baggage", "opentelemetry-processor-baggage"),
    ("opentelemetry.instrumentation", None),  # one distribution per library: not guessed
    ("opentelemetry.exporter", None),
)
_LOCKS = (("pdm.lock", "pdm lock"), ("poetry.lock", "poetry lock"), ("uv.lock", "uv lock"))
_REQUIREMENTS = ("requirements.in", "requirements.txt", "requirements/base.txt",
                 "requirements/main.txt", "requirements/prod.txt",
                 "requirements/production.txt")
_SKIP_DIRS = frozenset({".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".tox",
                        ".nox", "site-packages", "build", "dist", ".mypy_cache", ".ruff_cache"})


@cache
def kit_requirements() -> tuple[str, ...]:
    """What the kit imports, pinned at the versions it is tested with: scaffold's ``kit`` extra.

    The floors above are what retrofit asks of a repo; these pins are what new services get and
    what the test suite runs. Read from scaffold's own pyproject.toml in a source checkout
    (never stale), else from the installed distribution's metadata, which that file generated.
    """
    checkout = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if checkout.is_file():
        project = tomllib.loads(checkout.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == DISTRIBUTION:
            return tuple(project["optional-dependencies"]["kit"])
    return installed_kit_requirements()


def installed_kit_requirements() -> tuple[str, ...]:
    """The ``kit`` extra in the installed scaffold's metadata (a wheel has no pyproject)."""
    in_kit_extra = re.compile(r";\s*extra\s*==\s*[\"']kit[\"']\s*$")
    return tuple(
        requirement.partition(";")[0].strip()
        for requirement in importlib.metadata.requires(DISTRIBUTION) or ()
        if in_kit_extra.search(requirement)
    )


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


_SPEC = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)")


def _name_of(requirement: str) -> str:
    match = _SPEC.match(requirement)
    return normalise(match.group(1)) if match else ""


def _pinned(requirement: str) -> str | None:
    """The version of an ``==`` pin (``name==1.2.3`` / ``name = "==1.2.3"``), else None."""
    match = re.search(r"(?<![=!<>~])==\s*([0-9][0-9A-Za-z.+!-]*)", requirement.partition(";")[0])
    return match.group(1) if match else None


def version_key(version: str) -> tuple[tuple[int, ...], int, int]:
    """Enough of PEP 440 ordering for OpenTelemetry versions: release, then a pre-release
    (``0.48b0``) before its final release."""
    match = re.match(r"v?(\d+(?:\.\d+)*)(?:[._-]?(a|b|rc|alpha|beta|c)[._-]?(\d*))?", version)
    if match is None:
        return (), 0, 0
    release = tuple(int(part) for part in match.group(1).split("."))
    while len(release) > 1 and release[-1] == 0:
        release = release[:-1]
    if match.group(2):
        return release, 0, int(match.group(3) or 0)
    return release, 1, 0


# -- what a rewritten file needs --


@cache
def _kit_exports() -> Mapping[str, str]:
    """Public name of the kit package -> the kit module defining it (its ``_EXPORTS``)."""
    source = kit_sources(package_name="kitpkg")["__init__.py"]
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "_EXPORTS"):
            value = ast.literal_eval(node.value)
            if isinstance(value, dict):
                return {str(key): str(module) for key, module in value.items()}
    return {}


@cache
def _kit_modules() -> frozenset[str]:
    """The kit's module names (``threads``, ``tracing``, ...)."""
    return frozenset(name.removesuffix(".py") for name in kit_sources(package_name="kitpkg"))


def _imported(text: str) -> set[tuple[str, str | None]]:
    """``(module, name)`` of each absolute import in ``text`` (name None for ``import m``)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return set()
    found: set[tuple[str, str | None]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.update((node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update((alias.name, None) for alias in node.names)
    return found


def _kit_of(module: str, kits: Iterable[str]) -> str | None:
    """The kit package ``module`` is (or is in): a configured one, else ``<pkg>.tracekit``."""
    for kit in kits:
        if module == kit or module.startswith(kit + "."):
            return kit
    parts = module.split(".")
    if KIT_PACKAGE in parts[1:]:
        return ".".join(parts[: parts.index(KIT_PACKAGE, 1) + 1])
    return None


def _needed_by(imports: set[tuple[str, str | None]], text: str,
               kits: Iterable[str]) -> set[str]:
    """The distributions these imports need (beyond the standard library)."""
    needed: set[str] = set()
    for module, name in imports:
        if module == "opentelemetry" or module.startswith("opentelemetry."):
            full = f"{module}.{name}" if name and name != "*" else module
            for prefix, distribution in _MODULE_DISTRIBUTIONS:
                if full == prefix or full.startswith(prefix + "."):
                    if distribution is not None:
                        needed.add(distribution)
                    break
            else:
                needed.add(API)
            continue
        kit = _kit_of(module, kits)
        if kit is None:
            continue  # the repo's own code, a helper library, a third party it already uses
        inner = module[len(kit) + 1:].split(".")[0] if module != kit else None
        if inner is None and name is not None:  # a name of the package, or a module of it
            inner = name if name in _kit_modules() else _kit_exports().get(name)
        setup = (name in _SETUP_NAMES
                 or (name is None and inner in (None, "tracing") and INIT_TRACING in text))
        if inner in _SETUP_KIT_MODULES or setup:
            needed.update({API, *SETUP_FLOORS})
        elif inner not in _STDLIB_KIT_MODULES:
            needed.add(API)
    return needed


def needed_distributions(original: str, updated: str, kits: Iterable[str] = ()) -> set[str]:
    """What ``updated`` needs that ``original`` did not already: its new requirements."""
    kits = tuple(kits)
    before = _needed_by(_imported(original), original, kits)
    return _needed_by(_imported(updated), updated, kits) - before


# -- the project a file belongs to --


@dataclass(frozen=True)
class Manifest:
    """Where a project declares its dependencies."""

    path: Path
    kind: str  # "project" ([project] dependencies), "poetry", "requirements"
    problem: str | None = None  # why it cannot be edited (dynamic dependencies, setup.py...)

    @property
    def where(self) -> str:
        if self.kind == "project":
            return "[project] dependencies"
        if self.kind == "poetry":
            return "[tool.poetry.dependencies]"
        return self.path.name

    @property
    def folder(self) -> Path:
        return self.path.parent.parent if self.path.parent.name == "requirements" \
            else self.path.parent


def _load_toml(path: Path) -> dict | None:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def _requirements_in(folder: Path) -> Path | None:
    return next((folder / name for name in _REQUIREMENTS if (folder / name).is_file()), None)


def _manifest_in(folder: Path) -> Manifest | None:
    """The manifest of a project rooted at ``folder``, if one is."""
    pyproject = folder / "pyproject.toml"
    data = _load_toml(pyproject) if pyproject.is_file() else None
    if pyproject.is_file() and data is None:
        return Manifest(pyproject, "project", "it cannot be parsed")
    if data is not None:
        project = data.get("project")
        poetry = data.get("tool", {}).get("poetry")
        if isinstance(project, dict) and (
                "dependencies" in project or not isinstance(poetry, dict)
                or "dependencies" not in poetry):
            if "dependencies" in project.get("dynamic", ()):
                files = (data.get("tool", {}).get("setuptools", {}).get("dynamic", {})
                         .get("dependencies", {}).get("file"))
                files = [files] if isinstance(files, str) else files
                if isinstance(files, list) and len(files) == 1:
                    return Manifest(folder / files[0], "requirements")
                return Manifest(pyproject, "project",
                                "its dependencies are dynamic (declared by the build backend)")
            return Manifest(pyproject, "project")
        if isinstance(poetry, dict):
            return Manifest(pyproject, "poetry")
    requirements = _requirements_in(folder)
    if requirements is not None:
        return Manifest(requirements, "requirements")
    for legacy in ("setup.cfg", "setup.py"):
        if (folder / legacy).is_file():
            return Manifest(folder / legacy, "legacy", f"it declares them in {legacy}")
    return None


def _above(folder: Path) -> Iterator[Path]:
    """``folder`` and its parents, up to the repository root (a ``.git`` folder) included."""
    for level in (folder, *folder.parents):
        yield level
        if (level / ".git").exists():
            return


def manifest_of(path: Path) -> Manifest | None:
    """The manifest of the project holding ``path``: the nearest above it."""
    return next((found for level in _above(path.parent)
                 if (found := _manifest_in(level)) is not None), None)


def _declared(manifest: Manifest) -> list[str]:
    """The requirement strings of the manifest's dependency list."""
    if manifest.kind == "requirements":
        return _requirement_lines(manifest.path)
    data = _load_toml(manifest.path) or {}
    if manifest.kind == "poetry":
        table = data.get("tool", {}).get("poetry", {}).get("dependencies", {})
        return [f"{name}{_poetry_pin(value)}" for name, value in table.items()
                if name.lower() != "python"]
    deps = data.get("project", {}).get("dependencies", [])
    return [spec for spec in deps if isinstance(spec, str)]


def _poetry_pin(value: object) -> str:
    """A Poetry constraint as a PEP 508 suffix, as far as ``==`` pins go."""
    version = value.get("version") if isinstance(value, dict) else value
    if isinstance(version, str) and re.fullmatch(r"\s*==?\s*[0-9][0-9A-Za-z.]*\s*", version):
        return "==" + version.strip().lstrip("=")
    if isinstance(version, str) and re.fullmatch(r"[0-9][0-9A-Za-z.]*", version.strip()):
        return "==" + version.strip()  # Poetry reads a bare version as an exact pin
    return ""


def _requirement_lines(path: Path) -> list[str]:
    """The requirements ``path`` lists, with those of the files it includes (``-r``)."""
    return _requirements_file(path, set())[0]


def _requirements_file(path: Path, seen: set[Path]) -> tuple[list[str], list[str]]:
    """Requirements of a requirements file and its ``-r`` includes, and the pins of its
    ``-c`` constraint files."""
    if path in seen:
        return [], []
    seen.add(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return [], []
    specs: list[str] = []
    constraints: list[str] = []
    for line in lines:
        line = line.split(" #", 1)[0].strip()
        option = re.match(r"(-r|--requirement|-c|--constraint)[ =]\s*(\S+)", line)
        if option:
            included, pinned = _requirements_file(path.parent / option.group(2), seen)
            if option.group(1) in ("-r", "--requirement"):
                specs += included
                constraints += pinned
            else:
                constraints += included + pinned
        elif line and not line.startswith(("#", "-")):
            specs.append(line)
    return specs, constraints


@dataclass
class _Repo:
    """What is known about one repository: its first-party projects and their lists."""

    root: Path
    projects: dict[str, list[str]] = field(default_factory=dict)  # name -> requirements

    @classmethod
    def scan(cls, root: Path) -> _Repo:
        repo = cls(root)
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
            if "pyproject.toml" in files:
                data = _load_toml(Path(folder) / "pyproject.toml") or {}
                name = data.get("project", {}).get("name") or (
                    data.get("tool", {}).get("poetry", {}).get("name"))
                manifest = _manifest_in(Path(folder))
                if isinstance(name, str) and manifest is not None and manifest.problem is None:
                    repo.projects[normalise(name)] = _declared(manifest)
        return repo

    def provided(self, requirements: Iterable[str]) -> set[str]:
        """Every distribution these requirements bring: themselves, what they depend on, and
        what first-party projects of this repo they name declare, transitively."""
        pending = [_name_of(spec) for spec in requirements]
        seen: set[str] = set()
        while pending:
            name = pending.pop()
            if not name or name in seen:
                continue
            seen.add(name)
            pending.extend(_BRINGS.get(name, ()))
            pending.extend(_name_of(spec) for spec in self.projects.get(name, ()))
        return seen


def _locked(manifest: Manifest) -> tuple[dict[str, str], str | None, str | None]:
    """Versions the project locks or pins (name -> version), the lock's name and the command
    that refreshes it."""
    versions: dict[str, str] = {}
    lock_name = relock = None
    for level in _above(manifest.folder):
        for name, command in _LOCKS:
            data = _load_toml(level / name) if (level / name).is_file() else None
            if data is None:
                continue
            for package in data.get("package", ()):
                if isinstance(package, dict) and isinstance(package.get("name"), str):
                    versions.setdefault(normalise(package["name"]), str(package.get("version")))
            lock_name, relock = name, command
            break
        if lock_name:
            break
    pinned = _declared(manifest)
    if manifest.kind == "requirements":
        pinned += _requirements_file(manifest.path, set())[1]
    if manifest.kind == "requirements" and manifest.path.name == "requirements.in":
        compiled = manifest.path.with_suffix(".txt")
        pinned += _requirement_lines(compiled)
        lock_name = lock_name or compiled.name
        relock = relock or "pip-compile"
    for spec in pinned:
        version = _pinned(spec)
        if version is not None:
            versions[_name_of(spec)] = version
    return versions, lock_name, relock


def _conflicts(floors: Mapping[str, str], locked: Mapping[str, str],
               declared: Sequence[str]) -> list[str]:
    """Why ``floors`` clash with what the project locks or pins (empty: none)."""
    problems = []
    api_pins = {_pinned(spec) for spec in declared if _name_of(spec) in _LOCKSTEP} - {None}
    for name, floor in sorted(floors.items()):
        versions = {locked[name]} if name in locked else set()
        if name == API:
            versions |= {version for version in api_pins if version}
        for version in sorted(versions):
            if version_key(version) < version_key(floor):
                problems.append(f"it has {name} {version}, older than the {floor} the kit needs")
    return problems


# -- editing a manifest --


def _specs(floors: Mapping[str, str]) -> list[str]:
    return [f"{name}>={floor}" for name, floor in sorted(floors.items())]


def _edited(manifest: Manifest, text: str, specs: Sequence[str]) -> str:
    """``text`` of ``manifest`` with ``specs`` appended to its dependency list."""
    if manifest.kind == "requirements":
        if text and not text.endswith("\n"):
            text += "\n"
        return text + "".join(f"{spec}\n" for spec in specs)
    doc = tomlkit.parse(text)
    if manifest.kind == "poetry":
        table = doc["tool"]["poetry"]["dependencies"]  # type: ignore[index]
        for spec in specs:
            name, _, bound = spec.partition(">=")
            table[name] = f">={bound}"  # type: ignore[index]
        return tomlkit.dumps(doc)
    project = doc["project"]
    deps = project.get("dependencies")  # type: ignore[union-attr]
    if deps is None:
        project["dependencies"] = list(specs)  # type: ignore[index]
        return tomlkit.dumps(doc)
    assert isinstance(deps, tomlkit.items.Array)
    for spec in specs:
        deps.append(spec)
    return tomlkit.dumps(doc)


def _key_line(manifest: Manifest, text: str) -> int:
    """The line of the dependency list in the manifest (1 for a requirements file)."""
    pattern = {"project": r"(?m)^[ \t]*dependencies[ \t]*=",
               "poetry": r"(?m)^[ \t]*\[[ \t]*tool\.poetry\.dependencies[ \t]*\]"}.get(
        manifest.kind)
    found = re.search(pattern, text) if pattern else None
    return text.count("\n", 0, found.start()) + 1 if found else 1


# -- the run --


@dataclass(frozen=True)
class _Group:
    """The rewritten files of one project and what they need."""

    manifest: Manifest | None
    files: dict[str, set[str]]  # display path -> distributions it needs
    add: bool


def declare(results: Iterable[FileResult], targets: Sequence[Target], *, write: bool,
            add: bool = True) -> list[FileResult]:
    """The manifest edits (or findings) for what the rewritten files among ``results`` need."""
    by_display = {target.display: target for target in targets}
    kits = sorted({t.config.kit for t in targets if t.config.kit}, key=len, reverse=True)
    groups: dict[Path | None, _Group] = {}
    orphans: list[FileResult] = []
    for result in results:
        target = by_display.get(result.path)
        if (result.status is not Status.CHANGED or result.updated is None or target is None
                or not target.python or is_vendored(result.updated[:256].encode())):
            continue  # a vendored kit module is what is imported, not what imports
        needed = needed_distributions(result.original or "", result.updated, kits)
        if not needed:
            continue
        manifest = manifest_of(target.path)
        key = manifest.path if manifest is not None else None
        if manifest is None:
            orphans.append(_orphan(result.path, needed))
            continue
        group = groups.setdefault(key, _Group(manifest, {}, add))
        group.files[result.path] = needed
        if not target.config.add_dependencies:
            groups[key] = _Group(manifest, group.files, False)
    repos: dict[Path, _Repo] = {}
    out = [_settle(group, targets, repos, write) for group in groups.values()]
    return [result for result in out if result is not None] + orphans


def _orphan(display: str, needed: set[str]) -> FileResult:
    specs = ", ".join(_specs(floors_for(needed)))
    finding = Finding(display, 1, 1, RULE,
                      f"the rewritten code imports what {specs} provide, and no project "
                      "declaring dependencies (pyproject.toml, requirements.txt) was found above "
                      "it: add them to the dependencies of the project it belongs to")
    return FileResult(display, Status.UNCHANGED, (finding,))


def _repo_root(folder: Path) -> Path:
    """The repository holding ``folder``: its git root, else the highest folder above it with a
    manifest or a lock (a monorepo's root project), else ``folder`` itself."""
    levels = list(_above(folder))
    if (levels[-1] / ".git").exists():
        return levels[-1]
    marks = ("pyproject.toml", *(name for name, _ in _LOCKS))
    tops = [level for level in levels if any((level / mark).is_file() for mark in marks)]
    return tops[-1] if tops else folder


def _settle(group: _Group, targets: Sequence[Target], repos: dict[Path, _Repo],
            write: bool) -> FileResult | None:
    manifest = group.manifest
    assert manifest is not None
    display = _display(targets, manifest.path)
    needed = set().union(*group.files.values())
    users = ", ".join(sorted(group.files))
    if manifest.problem is not None:
        listed = ", ".join(_specs(floors_for(needed)))
        return _finding(display, 1, f"the rewritten {users} import what {listed} provide; "
                        f"{manifest.path.name} cannot be edited ({manifest.problem}): declare "
                        "them where this project lists its dependencies")
    root = _repo_root(manifest.folder)
    if root not in repos:
        repos[root] = _Repo.scan(root)
    declared = _declared(manifest)
    provided = repos[root].provided(declared)
    missing = sorted(name for name in needed if name not in provided)
    if not missing:
        return None
    users = ", ".join(sorted(path for path, wants in group.files.items() if wants & set(missing)))
    try:
        text = manifest.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return FileResult(display, Status.FAILED, reason=f"cannot read the dependencies: {exc}")
    line = _key_line(manifest, text)
    every = floors_for(needed)
    floors = {name: every[name] for name in missing}
    specs = _specs(floors)
    # the SDK added means its API line: a lock or pin of an older API conflicts too
    checked = {name: floor for name, floor in every.items()
               if name in floors or (name == API and floors.keys() & SETUP_FLOORS.keys())}
    locked, lock_name, relock = _locked(manifest)
    problems = _conflicts(checked, locked, declared)
    if problems:
        return _finding(display, line, f"the rewritten {users} import what {', '.join(specs)} "
                        f"provide; not added to {manifest.where}: {'; '.join(problems)}")
    if not group.add:
        return _finding(display, line, f"the rewritten {users} import what this project does "
                        f"not declare: add {', '.join(specs)} to {manifest.where}")
    try:
        updated = _edited(manifest, text, specs)
    except (tomlkit.exceptions.TOMLKitError, KeyError, AssertionError) as exc:
        return _finding(display, line, f"the rewritten {users} import what {', '.join(specs)} "
                        f"provide; {manifest.where} could not be edited ({exc})")
    note = ""
    if lock_name is not None:
        have = [f"{name} {locked[name]}" for name in missing if name in locked]
        note = (f"; {lock_name} has {', '.join(have)}, which satisfies it: refresh the lock "
                f"({relock})" if have else f"; refresh {lock_name} ({relock})")
    message = (f"adds {', '.join(specs)} to {manifest.where}: imported by the rewritten "
               f"{users}{note}")
    if write:
        try:
            atomic_write(manifest.path, updated.encode("utf-8"))
        except OSError as exc:
            return FileResult(display, Status.FAILED,
                              reason=f"cannot add the dependencies: {exc.strerror or exc}")
    finding = Finding(display, line, 1, RULE, message, Kind.CHANGE)
    return FileResult(display, Status.CHANGED, (finding,), original=text, updated=updated)


def _finding(display: str, line: int, message: str) -> FileResult:
    return FileResult(display, Status.UNCHANGED, (Finding(display, line, 1, RULE, message),))


def _display(targets: Sequence[Target], path: Path) -> str:
    """``path`` as the run shows files: under the PATH argument of a file beside it."""
    for target in targets:
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
