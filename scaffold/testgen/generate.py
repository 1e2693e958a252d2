"""Write the tracing tests of a repository: find its sites, render the templates, keep edits.

Output, in the configured tests folder (``tests-dir``, default ``tests/tracing``):
``conftest.py`` (the kit's span capture and leak guard, the harness), ``tracing_support.py``
(the harness), ``tracing_samples.py`` (written once, the user's), ``test_tracing_contract.py``
(``scaffold retrofit --check`` over the repository) and one ``test_trace_<module>.py`` per
source module with instrumented sites. Every file but the samples carries the header of
``scaffold.emitted``: a file the user edited is never rewritten.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import jinja2
import libcst as cst

from scaffold import DISTRIBUTION
from scaffold.config import Config, find_config, ruff_settings_for
from scaffold.emitted import Ownership, environment, ownership, stamp, write_text
from scaffold.engine.discovery import discover
from scaffold.kit_api import KIT_PACKAGE
from scaffold.repo import packaging
from scaffold.testgen.conventions import read_style
from scaffold.testgen.layout import fit
from scaffold.testgen.locate import locate
from scaffold.testgen.model import ModuleTests
from scaffold.vendor import KIT_MARKER, KitResolver, is_vendored

TEMPLATE_DIR = "templates/testgen"
SAMPLES = "tracing_samples.py"
SUPPORT = "tracing_support.py"
CONTRACT = "test_tracing_contract.py"
MODULE_PREFIX = "test_trace_"
DEFAULT_LINE_LENGTH = 88  # ruff's and black's, when the repository configures neither
# What a test's ``def`` line holds besides its name (``async def``, ``(``; the parameters
# may go on the next lines): names are cut to fit the line.
_DEF_OVERHEAD = len("async def ") + len("(")


@dataclass
class Generated:
    """What one run of the generator found and did."""

    root: Path
    tests_dir: Path
    modules: list[ModuleTests] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # edited by the user: left alone
    removed: list[Path] = field(default_factory=list)
    unparsed: list[str] = field(default_factory=list)
    reason: str | None = None  # why nothing was generated

    @property
    def driven(self) -> int:
        return sum(len(module.driven) for module in self.modules)

    @property
    def skipped(self) -> int:
        return sum(len(module.skipped) for module in self.modules)

    def summary(self) -> str:
        """One line for the command's output, then one line per skipped site."""
        if self.reason:
            return f"tracing tests: none generated: {self.reason}"
        try:
            where = self.tests_dir.relative_to(Path.cwd())
        except ValueError:
            where = self.tests_dir
        lines = [
            f"tracing tests: {self.driven + self.skipped} sites, {self.driven} driven, "
            f"{self.skipped} skipped; {len(self.written)} files written, "
            f"{len(self.kept)} edited by you and kept, in {where}"
        ]
        for module in self.modules:
            lines.extend(
                f"  skipped {case.site.where}: {case.skip}" for case in module.skipped
            )
        lines.extend(f"  not parsed: {path}" for path in self.unparsed)
        return "\n".join(lines)


def _environment() -> jinja2.Environment:
    return environment(py=repr, docstring=_docstring)


def _docstring(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return f'"""{escaped}"""'


def _tidy(text: str) -> str:
    """Rendered Python with at most two blank lines in a row and one final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if not line and len(out) >= 2 and not out[-1] and not out[-2]:
            continue
        out.append(line)
    while out and not out[0]:
        out.pop(0)
    return "\n".join(out).rstrip("\n") + "\n"


def _module_name(root: Path, relative: PurePosixPath) -> tuple[str, Path]:
    """Dotted import name of a file, and the folder it is importable from."""
    folder = root.joinpath(*relative.parts[:-1])
    parts = [relative.stem] if relative.stem != "__init__" else []
    while (folder / "__init__.py").is_file() and folder != root.parent:
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts), folder


def _import_name(root: Path, relative: PurePosixPath,
                 roots: tuple[packaging.ImportRoot, ...]) -> tuple[str, Path]:
    """Dotted import name of a file and the folder it is importable from, as the packaging
    metadata has it (a service folder without ``__init__.py`` under a package is a
    namespace package its own code imports through); by ``__init__.py`` files otherwise."""
    path = root.joinpath(*relative.parts)
    name = packaging.module_name(path, roots)
    if name:
        depth = len(name.split(".")) - (0 if relative.name == "__init__.py" else 1)
        folder = path.parents[depth] if depth < len(path.parents) else None
        if folder is not None and any(r.path == folder for r in roots):
            return name, folder
    return _module_name(root, relative)


def _kit_dir(root: Path, kit: str | None, import_roots: set[Path]) -> PurePosixPath | None:
    if kit is None:
        return None
    for import_root in sorted(import_roots):
        candidate = import_root.joinpath(*kit.split("."))
        if (candidate / KIT_MARKER).is_file():
            return PurePosixPath(os.path.relpath(candidate, root))
    return None


class Sites(NamedTuple):
    """What ``find_sites`` found under a repository."""

    modules: list[ModuleTests]  # the modules with sites, each with its planned tests
    kit: str | None  # the kit's import path
    unparsed: list[str]  # files that failed to parse
    import_roots: set[Path]  # the folders the modules with sites (and the kit) import from
    packages: set[str]  # the top-level import names of every source module


def line_length(config: Config, tests_dir: Path) -> int:
    """The line length the repository's linter holds the generated tests to: ruff's for a
    file in the tests folder, else black's or isort's, else ruff's default."""
    return ruff_settings_for(tests_dir / "conftest.py", config.import_sorting).line_length or \
        config.line_length or DEFAULT_LINE_LENGTH


def find_sites(root: Path, config: Config | None = None) -> Sites:
    """The planned tests of every source module under ``root`` (tests and the kit excluded)."""
    root = root.resolve()
    config = config or find_config(root)
    tests_dir = (config.root / config.tests_dir).resolve()
    targets = [t for t in discover([root]) if t.python and t.skip_reason is None]
    resolver = KitResolver(targets)
    sources: list[tuple[PurePosixPath, str, Path]] = []
    kits: Counter[str] = Counter()
    source_files = [target.path for target in targets
                    if not target.test and not target.path.is_relative_to(tests_dir)]
    roots = packaging.import_roots(root, source_files)
    for target in targets:
        try:
            relative = PurePosixPath(target.path.relative_to(root).as_posix())
        except ValueError:
            continue
        if target.test or target.path.is_relative_to(tests_dir):
            continue
        module, import_root = _import_name(root, relative, roots)
        sources.append((relative, module, import_root))
        kit_for = resolver.kit_for(target)
        if kit_for is not None:
            kits[kit_for] += 1
    import_roots = {import_root for _, _, import_root in sources}
    existing = [(count, kit) for kit, count in kits.items()
                if _kit_dir(root, kit, import_roots) is not None]
    # a configured kit that is not in the tree is an installed library: trust the config
    kit = max(existing)[1] if existing else config.kit
    kit_dir = _kit_dir(root, kit, import_roots)
    packages = {module.split(".")[0] for _, module, _ in sources}
    modules: list[ModuleTests] = []
    unparsed: list[str] = []
    used_roots: set[Path] = set()
    if kit is not None and kit_dir is not None:
        used_roots.add((root / kit_dir).parents[len(kit.split(".")) - 1])
    for relative, module, import_root in sorted(sources):
        if kit_dir is not None and relative.is_relative_to(kit_dir):
            continue
        if KIT_PACKAGE in relative.parts[:-1]:
            continue
        text = (root / relative).read_bytes()
        if is_vendored(text) or not _might_have_sites(text):
            continue
        try:
            source = text.decode("utf-8")
            tests = locate(source, path=str(relative), module=module, repo_packages=packages,
                           kit=kit, helper_module=config.helper_module,
                           max_name=line_length(config, tests_dir) - _DEF_OVERHEAD)
        except (UnicodeDecodeError, cst.ParserSyntaxError, RecursionError):
            unparsed.append(str(relative))
            continue
        if tests.cases:
            modules.append(tests)
            used_roots.add(import_root)
    return Sites(_without_ambiguous(modules), kit, unparsed, used_roots, packages)


def _without_ambiguous(modules: list[ModuleTests]) -> list[ModuleTests]:
    """Modules that two files import as (``app`` of two services that are not packages):
    a test could not tell which one it imports, so their sites are generated skipped."""
    paths: dict[str, list[str]] = {}
    for tests in modules:
        paths.setdefault(tests.module, []).append(tests.path)
    kept: list[ModuleTests] = []
    for tests in modules:
        shared = paths[tests.module]
        if len(shared) == 1:
            kept.append(tests)
            continue
        reason = (f"{len(shared)} files import as `{tests.module}` ({', '.join(shared)}), so a "
                  "test cannot tell which one it imports; make their folders packages")
        tests.cases = [case if case.skip else replace(case, skip=reason) for case in tests.cases]
        tests.test_file = _module_file(str(PurePosixPath(tests.path).with_suffix("")))
        kept.append(tests)
    return kept


# Every site mentions one of these: the kit, a helper name, attach or copy_context.
_SITE_WORDS = (
    KIT_PACKAGE.encode(), b"inject", b"attach", b"copy_context", b"consume_", b"traced_send",
    b"restore_", b"use_trace_context", b"init_tracing", b"Traced",
)


def _might_have_sites(text: bytes) -> bool:
    """A cheap prefilter: does ``text`` mention one of ``_SITE_WORDS``?"""
    return any(needle in text for needle in _SITE_WORDS)


def _module_file(module: str) -> str:
    return f"{MODULE_PREFIX}{re.sub(r'[^A-Za-z0-9_]', '_', module)}.py"


def generate_tests(root: Path, *, config: Config | None = None, write: bool = True) -> Generated:
    """Find the sites under ``root`` and write their tests into the configured tests folder.

    ``write=False`` plans and reports without touching the disk.
    """
    root = Path(root).resolve()
    config = config or find_config(root)
    project = config.root if config.source is not None else root
    tests_dir = (project / config.tests_dir).resolve()
    result = Generated(root=project, tests_dir=tests_dir)
    modules, kit, unparsed, import_roots, packages = find_sites(root, config)
    result.modules, result.unparsed = modules, unparsed
    if kit is None:
        result.reason = ("the repository has no kit (tracekit) for the tests' span capture; "
                         "run `scaffold retrofit` on it first, or set `kit` in [tool.scaffold]")
        result.modules = []
        return result
    env = _environment()
    style = read_style(project)
    width = line_length(config, tests_dir)
    common = {
        "kit_module": kit,
        "style": style,
        "import_roots": sorted(os.path.relpath(path, tests_dir) for path in import_roots),
        "repo_packages": tuple(sorted({m.module.split(".")[0] for m in modules} | {
            kit.split(".")[0]})),
        "source_packages": tuple(sorted(packages | {kit.split(".")[0]})),
        "distribution": DISTRIBUTION,
        "samples_path": os.path.relpath(tests_dir / SAMPLES, project),
        "root_from_tests": os.path.relpath(project, tests_dir),
    }
    files: dict[str, tuple[str, str]] = {
        "conftest.py": ("conftest.py.jinja", ""),
        SUPPORT: ("tracing_support.py.jinja", ""),
        CONTRACT: ("test_tracing_contract.py.jinja", ""),
    }
    rendered: dict[Path, tuple[str, str]] = {}
    for name, (template, _) in files.items():
        body = env.get_template(f"{TEMPLATE_DIR}/{template}").render(**common)
        rendered[tests_dir / name] = (fit(_tidy(body), width), template)
    for tests in modules:
        body = env.get_template(f"{TEMPLATE_DIR}/test_module.py.jinja").render(
            tests=tests, **common)
        rendered[tests_dir / (tests.test_file or _module_file(tests.module))] = (
            fit(_tidy(body), width), "test_module.py.jinja")
    samples = tests_dir / SAMPLES
    if not samples.exists():
        text = env.get_template(f"{TEMPLATE_DIR}/tracing_samples.py.jinja").render(**common)
        if write:
            write_text(samples, fit(_tidy(text), width))
        result.written.append(samples)
    for path, (body, template) in rendered.items():
        state = ownership(path)
        if state in (Ownership.EDITED, Ownership.FOREIGN):
            result.kept.append(path)
        elif state is Ownership.OURS and path.read_text(encoding="utf-8") == stamp(
                body, f"{TEMPLATE_DIR}/{template}"):
            result.unchanged.append(path)
        else:
            if write:
                write_text(path, stamp(body, f"{TEMPLATE_DIR}/{template}"))
            result.written.append(path)
    if tests_dir.is_dir():
        for stale in sorted(tests_dir.glob(f"{MODULE_PREFIX}*.py")):
            if stale not in rendered and ownership(stale) is Ownership.OURS:
                if write:
                    stale.unlink()
                result.removed.append(stale)
    return result


def project_root(path: Path) -> Path:
    """The repository a PATH belongs to: its ``[tool.scaffold]`` pyproject's folder, else the
    nearest folder with a pyproject.toml, setup.cfg or .git, else the PATH's folder."""
    path = Path(path).resolve()
    folder = path if path.is_dir() else path.parent
    config = find_config(folder)
    if config.source is not None:
        return config.root
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).exists() for marker in ("pyproject.toml", "setup.cfg", ".git")):
            return candidate
    return folder


def generate_for(paths: list[str], *, write: bool = True) -> list[Generated]:
    """Tests for each repository the PATHs of a retrofit run belong to, once per repository.

    A repository whose ``[tool.scaffold]`` says ``generate-tests = false`` gets none.
    """
    results = []
    for root in dict.fromkeys(project_root(Path(path)) for path in paths):
        config = find_config(root)
        if not config.generate_tests:
            results.append(Generated(root=root, tests_dir=root / config.tests_dir,
                                     reason=f"generate-tests = false in {config.where}"))
            continue
        results.append(generate_tests(root, config=config, write=write))
    return results
