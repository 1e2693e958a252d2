"""The repo model: every discovered file's module, definitions, signatures and calls, built
once per run from the stdlib ``ast``, and the facts derived from them.

Queries take and return absolute dotted names (see ``scaffold.repo.info``). ``canonical``
follows a name to where it is defined: through re-exports (``pkg.init_tracing`` ->
``pkg.observability.tracing.init_tracing``), and for ``Class.method`` through the class's
bases in the repo. A name the repo does not define stays as it is (``quart.Quart``).
"""

from __future__ import annotations

import ast
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path, PurePath
from typing import Any

from scaffold.kit_api import INIT_TRACING, KIT_PACKAGE
from scaffold.repo import packaging
from scaffold.repo.extract import Extracted, extract
from scaffold.repo.info import (
    MAIN_CODE,
    MODULE_CODE,
    Binding,
    CallSite,
    ClassInfo,
    FunctionInfo,
    ModuleInfo,
)

# what installs a tracer provider in the SDK: the end of every tracing set-up chain
SDK_PROVIDER = "opentelemetry.sdk.trace.TracerProvider"
SDK_SETUP = frozenset({SDK_PROVIDER, "opentelemetry.trace.set_tracer_provider"})

Predicate = Callable[[str], bool]  # on a callee's canonical dotted name
Mapper = Callable[[Callable[[Any], Any], list[Any]], Iterable[Any]]  # map, or a pool's


def extract_file(job: tuple[Path, str, bool]) -> Extracted | None:
    """One file's facts, read from disk (None: unreadable); a top-level function, so a
    process pool can run it."""
    path, module, is_package = job
    try:
        source = path.read_bytes()
    except OSError:
        return None
    return extract(source, path, module, is_package=is_package)


_TEST_NAME = re.compile(r"^(test_.*|.*_test|conftest|testing)\.py$")
_TEST_FOLDERS = frozenset({"tests", "test", "testing"})


def is_test_file(path: str | os.PathLike[str]) -> bool:
    """Test code: in a ``tests``/``test``/``testing`` folder, ``test_*.py``, ``*_test.py``,
    ``conftest.py``, ``testing.py`` (the rule ``scaffold.checks.base.is_test_path`` applies)."""
    pure = PurePath(path)
    return bool(_TEST_NAME.match(pure.name)) or not _TEST_FOLDERS.isdisjoint(pure.parts[:-1])


class RepoModel:
    """Modules, functions and classes of one repo, by dotted name."""

    def __init__(self, root: Path, roots: Sequence[packaging.ImportRoot] = (),
                 helper_module: str | None = None) -> None:
        self.root = root
        self.roots = tuple(roots)
        self.helper_module = helper_module  # [tool.scaffold] helper-module of the run, if any
        self.modules: dict[str, ModuleInfo] = {}
        self.functions: dict[str, FunctionInfo] = {}
        self.classes: dict[str, ClassInfo] = {}
        self._by_path: dict[str, str] = {}
        self._memo: dict[Any, Any] = {}

    # -- building --

    @classmethod
    def build(cls, root: Path, files: Iterable[Path], config: Any = None, *,
              include_tests: bool = False, mapper: Mapper | None = None) -> RepoModel:
        """The model of ``files`` (Python files under ``root``); ``config`` (a
        ``scaffold.config.Config``) gives the helper module tracing queries look for.

        Test files (``is_test_file``) are left out unless ``include_tests``: no service code
        calls them, and they are more than half the bytes of a typical repo. ``mapper``
        (``map`` by default; a process pool's ``map`` spreads the parsing) extracts each
        file, results in order.
        """
        files = [Path(file).absolute() for file in files
                 if include_tests or not is_test_file(file)]
        roots = packaging.import_roots(Path(root), files)
        model = cls(Path(root).absolute(), roots, getattr(config, "helper_module", None))
        jobs: dict[str, tuple[Path, str, bool]] = {}
        for file in files:
            name = packaging.module_name(file, roots)
            if name is not None and name not in jobs:
                jobs[name] = (file, name, file.name == "__init__.py")
        for extracted in (mapper or map)(extract_file, list(jobs.values())):
            if extracted is not None:
                model.add(extracted)
        return model

    @classmethod
    def single(cls, source: bytes, path: str | os.PathLike[str], module: str | None = None, *,
               tree: ast.Module | None = None, helper_module: str | None = None) -> RepoModel:
        """The model of one file on its own (``process_source``: fixtures, one-off runs)."""
        file = Path(path)
        name = module or (file.stem if file.stem.isidentifier() else "module")
        model = cls(file.parent, (), helper_module)
        model.add(extract(source, file, name, is_package=file.name == "__init__.py", tree=tree))
        return model

    def add(self, extracted: Extracted) -> None:
        module = extracted.module
        self.modules[module.name] = module
        self._by_path[str(module.path)] = module.name
        for function in extracted.functions:
            self.functions[function.dotted] = function
        for klass in extracted.classes:
            self.classes[klass.dotted] = klass
        self._memo.clear()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_memo"] = {}  # answers are recomputed where they are asked
        return state

    # -- where things are --

    def module_of(self, path: str | os.PathLike[str]) -> str | None:
        """The dotted module a file is imported as (None: not in the model)."""
        name = self._by_path.get(str(Path(path).absolute()))
        if name is None and self.roots:
            return packaging.module_name(Path(path), self.roots)
        return name

    def file_of(self, module: str) -> Path | None:
        info = self.modules.get(module)
        return info.path if info is not None else None

    def module(self, name: str) -> ModuleInfo | None:
        return self.modules.get(name)

    def function(self, dotted: str) -> FunctionInfo | None:
        """The function ``dotted`` names, following re-exports and base classes."""
        found = self.functions.get(dotted)
        return found if found is not None else self.functions.get(self.canonical(dotted))

    def class_(self, dotted: str) -> ClassInfo | None:
        found = self.classes.get(dotted)
        return found if found is not None else self.classes.get(self.canonical(dotted))

    def find(self, name: str) -> tuple[str, ...]:
        """The functions and classes ``name`` can mean: its definition when it resolves,
        else every one whose dotted name ends in ``.name`` (a configured ``Class.method``
        without its module path), sorted."""
        exact = self.canonical(name)
        if exact in self.functions or exact in self.classes:
            return (exact,)
        suffix = f".{name}"
        return tuple(sorted(dotted for table in (self.functions, self.classes)
                            for dotted in table if dotted.endswith(suffix)))

    def module_code(self, module: str) -> FunctionInfo | None:
        """The module's top-level code, as a function (what importing it runs)."""
        return self.functions.get(f"{module}.{MODULE_CODE}")

    def main_code(self, module: str) -> FunctionInfo | None:
        """The body of the module's ``if __name__ == "__main__":`` block."""
        return self.functions.get(f"{module}.{MAIN_CODE}")

    def function_at(self, module: str, line: int) -> FunctionInfo | None:
        """The innermost function of ``module`` defined on ``line`` (its ``def`` line, or a
        decorator's)."""
        info = self.modules.get(module)
        if info is None:
            return None
        best: FunctionInfo | None = None
        for dotted in info.functions:
            function = self.functions[dotted]
            first = function.first_line or function.line
            if function.qualname in (MODULE_CODE, MAIN_CODE) or not (
                    first <= line <= function.line):
                continue
            if best is None or function.line >= best.line:
                best = function
        return best

    # -- names --

    def resolve(self, module: str, name: str) -> str | None:
        """What the (dotted) ``name`` stands for, seen from the top level of ``module``;
        canonical. None: the module does not bind it (a builtin, a typo)."""
        info = self.modules.get(module)
        if info is None:
            return None
        head, _, rest = name.partition(".")
        kind = info.bindings.get(head)
        if kind is Binding.IMPORT:
            item = info.imported(head)
            base = item.target if item is not None else None
        elif kind is not None:
            base = f"{module}.{head}"
        else:
            star = next((i.target for i in reversed(info.imports) if i.star), None)
            base = f"{star}.{head}" if star else None
        if base is None:
            return None
        return self.canonical(f"{base}.{rest}" if rest else base)

    def canonical(self, dotted: str) -> str:
        """``dotted`` followed to its definition in the repo (or returned as it is)."""
        key = ("canonical", dotted)
        if key not in self._memo:
            self._memo[key] = self._canonical(dotted, 0)
        return self._memo[key]

    def _canonical(self, dotted: str, depth: int) -> str:
        if depth > 20 or dotted in self.functions or dotted in self.classes \
                or dotted in self.modules:
            return dotted
        if "()" in dotted:  # what a call returns, then attributes of that
            callee, _, rest = dotted.partition("()")
            result = self._result(self._canonical(callee, depth + 1))
            if result is None:
                return dotted
            return self._canonical(result + rest, depth + 1)
        parts = dotted.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            if module in self.modules:
                break
        else:
            return dotted
        info = self.modules[module]
        name, tail = parts[cut], parts[cut + 1:]
        kind = info.bindings.get(name)
        if kind is Binding.IMPORT:
            item = info.imported(name)
            if item is not None and item.target != dotted:
                return self._canonical(".".join([item.target, *tail]), depth + 1)
            return dotted
        if kind is Binding.CLASS and tail:
            klass = f"{module}.{name}"
            held = self._attribute(klass, tail[0])
            if held is not None:  # what an attribute holds, then attributes of that
                return self._canonical(".".join([held, *tail[1:]]), depth + 1)
            method = self._method(klass, tail[0])
            return ".".join([method, *tail[1:]]) if method else dotted
        if kind is Binding.VARIABLE and tail and name in info.variables:
            return self._canonical(".".join([info.variables[name], *tail]), depth + 1)
        if kind is None:
            for star in (i.target for i in reversed(info.imports) if i.star):
                found = self._canonical(".".join([star, name, *tail]), depth + 1)
                if found != ".".join([star, name, *tail]) or found.rsplit(".", 1)[0] in (
                        self.functions.keys() | self.classes.keys()):
                    return found
            submodule = f"{module}.{name}"
            if submodule in self.modules:
                return self._canonical(".".join([submodule, *tail]), depth + 1)
        return dotted

    # -- what names hold --

    def _result(self, callee: str) -> str | None:
        """The class an instance made by calling ``callee`` (canonical) is: the class
        itself, or a function's return annotation."""
        if callee in self.classes:
            return callee
        function = self.functions.get(callee)
        if function is not None:
            return self.canonical(function.returns_type) if function.returns_type else None
        # outside the repo: a CapWords name is a class (PEP 8), so the call makes one
        last = callee.rsplit(".", 1)[-1]
        return callee if "." in callee and last[:1].isupper() else None

    def _attribute(self, klass: str, name: str) -> str | None:
        """What attribute ``name`` of ``klass`` holds (through its bases in the repo)."""
        for current in self.mro(klass):
            info = self.classes.get(current)
            if info is not None and name in info.attributes:
                return info.attributes[name]
        return None

    def type_of(self, dotted: str) -> str | None:
        """The class of what a module variable (``pkg.mod.bus``), an attribute
        (``pkg.mod.Service.bus``) or a call (``pkg.mod.make_bus()``) holds, canonical;
        None when the repo does not say."""
        if dotted.endswith("()"):
            return self._result(self.canonical(dotted[:-2]))
        owner, _, name = dotted.rpartition(".")
        owner = self.canonical(owner)
        if owner in self.classes:
            held = self._attribute(owner, name)
        else:
            info = self.modules.get(owner)
            held = info.variables.get(name) if info is not None else None
        if held is None:
            return None
        found = self.canonical(held)
        return None if "()" in found else found

    def holders(self, classes: Iterable[str]) -> tuple[str, ...]:
        """The module variables and class attributes holding an instance of one of
        ``classes`` (or of a subclass), dotted, sorted: "which names hold an X"."""
        wanted = set(classes)
        found = []
        for module in self.modules.values():
            found += [f"{module.name}.{name}" for name in module.variables]
        for klass in self.classes.values():
            found += [f"{klass.dotted}.{name}" for name in klass.attributes]
        return tuple(sorted(dotted for dotted in found
                            if (kind := self.type_of(dotted)) is not None
                            and self.is_subclass(kind, wanted)))

    # -- classes --

    def bases(self, dotted: str) -> tuple[str, ...]:
        """A class's bases, canonical."""
        klass = self.classes.get(dotted)
        return tuple(self.canonical(base) for base in klass.bases) if klass else ()

    def mro(self, dotted: str) -> tuple[str, ...]:
        """The class and its ancestors, depth first, each once; names outside the repo are
        kept as leaves (``quart.Quart``)."""
        seen: dict[str, None] = {}
        stack = [self.canonical(dotted)]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen[current] = None
            stack.extend(reversed(self.bases(current)))
        return tuple(seen)

    def is_subclass(self, dotted: str, bases: Iterable[str]) -> bool:
        """Whether the class is, or derives from, one of ``bases`` (dotted names)."""
        wanted = set(bases)
        return any(name in wanted for name in self.mro(dotted))

    def method(self, klass: str, name: str) -> str | None:
        """The dotted method ``name`` of ``klass`` resolves to through its bases; a base
        outside the repo gives ``base.name`` (a guess the caller can test)."""
        return self._method(self.canonical(klass), name)

    def _method(self, klass: str, name: str) -> str | None:
        for current in self.mro(klass):
            candidate = f"{current}.{name}"
            if candidate in self.functions:
                return candidate
            if current not in self.classes and current != klass:
                return candidate
        return None

    # -- calls --

    def callees(self, dotted: str) -> tuple[tuple[CallSite, str], ...]:
        """Each call the function makes, with the callee's canonical name (calls nobody
        can name are left out). Calling a repo class means calling its ``__init__``."""
        key = ("callees", dotted)
        if key in self._memo:
            return self._memo[key]
        function = self.function(dotted)
        found: list[tuple[CallSite, str]] = []
        for call in function.calls if function is not None else ():
            if call.target is None:
                continue
            target = self.canonical(call.target)
            found.append((call, target))
            if target in self.classes:
                init = self._method(target, "__init__")
                if init is not None and init in self.functions:
                    found.append((call, init))
        self._memo[key] = result = tuple(found)
        return result

    def reachable(self, dotted: str) -> Iterator[tuple[FunctionInfo, CallSite, str]]:
        """Every call made by the function or by the repo functions it calls, transitively
        (breadth first): the calling function, the call, the callee's canonical name."""
        start = self.function(dotted)
        if start is None:
            return
        queue = deque([start.dotted])
        seen = {start.dotted}
        while queue:
            current = queue.popleft()
            function = self.functions[current]
            for call, target in self.callees(current):
                yield function, call, target
                if target in self.functions and target not in seen:
                    seen.add(target)
                    queue.append(target)

    def reaches(self, dotted: str, predicate: Predicate) -> bool:
        """Whether the function, or a repo function it calls (transitively), calls something
        whose canonical name satisfies ``predicate``."""
        return self.path_to(dotted, predicate) is not None

    def path_to(self, dotted: str, predicate: Predicate) -> tuple[str, ...] | None:
        """The chain of calls from the function to the first callee satisfying
        ``predicate`` (``(dotted, ..., callee)``), or None."""
        start = self.function(dotted)
        if start is None:
            return None
        parents: dict[str, str | None] = {start.dotted: None}
        queue = deque([start.dotted])
        while queue:
            current = queue.popleft()
            for _, target in self.callees(current):
                if predicate(target):
                    chain = [target, current]
                    while parents[chain[-1]] is not None:
                        chain.append(parents[chain[-1]])  # type: ignore[arg-type]
                    return tuple(reversed(chain))
                if target in self.functions and target not in parents:
                    parents[target] = current
                    queue.append(target)
        return None

    # -- tracing --

    def is_tracing_setup(self, target: str, helper_module: str | None = None) -> bool:
        """Whether calling ``target`` (canonical) sets tracing up: the SDK's
        ``TracerProvider(...)`` / ``trace.set_tracer_provider(...)``, a kit's or the
        configured helper module's ``init_tracing``."""
        if target in SDK_SETUP:
            return True
        parts = target.split(".")
        if parts[-1] != INIT_TRACING:
            return False
        if KIT_PACKAGE in parts[:-1]:
            return True
        helper = helper_module or self.helper_module
        if helper is None:
            return False
        if target in (self.canonical(f"{helper}.{INIT_TRACING}"), f"{helper}.{INIT_TRACING}"):
            return True
        # a helper library outside the model: its package re-exporting it (`pkg.init_tracing`
        # of `pkg.observability`) or the submodule defining it count as the helper's
        module = target.rsplit(".", 1)[0]
        return module not in self.modules and (
            helper.startswith(f"{module}.") or module.startswith(f"{helper}."))

    def reaches_tracing_setup(self, dotted: str, helper_module: str | None = None) -> bool:
        """Whether running the function sets tracing up, through any chain of repo calls."""
        return self.tracing_setup_path(dotted, helper_module) is not None

    def tracing_setup_path(self, dotted: str,
                           helper_module: str | None = None) -> tuple[str, ...] | None:
        """The chain of calls by which the function sets tracing up, or None."""
        key = ("tracing", dotted, helper_module)
        if key not in self._memo:
            self._memo[key] = self.path_to(
                dotted, lambda target: self.is_tracing_setup(target, helper_module))
        return self._memo[key]

    def tracer_providers(self, dotted: str) -> tuple[CallSite, ...]:
        """The SDK ``TracerProvider(...)`` calls running the function may make."""
        return tuple(call for _, call, target in self.reachable(dotted) if target == SDK_PROVIDER)
