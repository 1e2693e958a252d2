"""The facts the repo model holds about each module: plain frozen dataclasses (they cross
process boundaries: rules run in worker processes).

Dotted names are absolute: ``pkg.mod.func``, ``pkg.mod.Class.method``, a function nested in
another ``pkg.mod.create_app.<locals>.lifespan``; a module's top-level code is the pseudo
function ``pkg.mod.<module>``, and the body of its ``if __name__ == "__main__":`` block
``pkg.mod.<main>``. A call's ``target`` is the callee as the caller's module names it, made
absolute through its imports (``services.x.startup_setup.initialize_tracing``,
``opentelemetry.sdk.trace.TracerProvider``); ``RepoModel.canonical`` follows re-exports and
base classes from there to where the callee is defined.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

# TYPES: what a variable or attribute holds is written as an absolute dotted name: the class
# from its annotation (``pkg.bus.KafkaBus``), or what it was assigned from a call of,
# followed by ``()`` (``pkg.factory.make_bus()``: the model looks at what that returns).
MODULE_CODE = "<module>"  # qualname of a module's top-level code
MAIN_CODE = "<main>"  # qualname of its `if __name__ == "__main__":` block
LOCALS = "<locals>"  # between an enclosing function and a function defined inside it


class ParamKind(StrEnum):
    """How a parameter is passed (``inspect.Parameter`` kinds)."""

    POSITIONAL_ONLY = "positional-only"
    POSITIONAL = "positional"  # positional or keyword
    VAR_POSITIONAL = "var-positional"  # *args
    KEYWORD_ONLY = "keyword-only"
    VAR_KEYWORD = "var-keyword"  # **kwargs


@dataclass(frozen=True)
class Param:
    """One parameter: its annotation and default as written in the source (None: none)."""

    name: str
    kind: ParamKind
    annotation: str | None = None
    default: str | None = None


@dataclass(frozen=True)
class CallSite:
    """One call inside a function (nested functions' calls are theirs, not this one's)."""

    target: str | None  # absolute dotted callee as the module names it; None: not nameable
    expression: str  # the callee as written: "startup_setup.initialize_tracing", "self.publish"
    line: int
    column: int  # 0-based, as ast counts
    args: tuple[str, ...] = ()  # positional arguments' source (a starred one keeps its `*`)
    keywords: tuple[tuple[str | None, str], ...] = ()  # (name or None for **x, value source)

    def keyword(self, name: str) -> str | None:
        """The source of keyword argument ``name``, if passed."""
        return next((value for key, value in self.keywords if key == name), None)


@dataclass(frozen=True)
class FunctionInfo:
    """A function, method, nested function or a module's top-level code."""

    dotted: str
    module: str
    qualname: str  # "func", "Class.method", "create_app.<locals>.lifespan", "<module>"
    line: int
    end_line: int
    is_async: bool = False
    params: tuple[Param, ...] = ()
    returns: str | None = None  # the return annotation's source
    decorators: tuple[str, ...] = ()  # each decorator's source, without the `@`
    calls: tuple[CallSite, ...] = ()
    owner: str | None = None  # the dotted class of a method
    first_line: int = 0  # where its first decorator starts (0: undecorated, at ``line``)
    returns_type: str | None = None  # the return annotation's class, absolute (see TYPES)

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]

    def param(self, name: str) -> Param | None:
        return next((param for param in self.params if param.name == name), None)


@dataclass(frozen=True)
class ClassInfo:
    """A class: its bases as the module names them (absolute where imports tell) and its
    methods (names; ``RepoModel.method`` looks through the bases)."""

    dotted: str
    module: str
    qualname: str
    line: int
    end_line: int
    bases: tuple[str, ...] = ()  # absolute dotted where resolvable, else the source text
    methods: tuple[str, ...] = ()
    decorators: tuple[str, ...] = ()
    # what its attributes hold (class-level annotations, `self.x = ...` in its methods)
    attributes: Mapping[str, str] = field(default_factory=dict)  # name -> type (see TYPES)


@dataclass(frozen=True)
class ImportInfo:
    """A name an import statement binds: ``local`` stands for the absolute ``target``."""

    local: str
    target: str  # "pkg.mod" for `import pkg.mod as local`, "pkg.mod.name" for a from-import
    line: int
    star: bool = False  # `from target import *` (local is "*")


class Binding(StrEnum):
    """What a top-level name of a module is."""

    FUNCTION = "function"
    CLASS = "class"
    IMPORT = "import"
    VARIABLE = "variable"


@dataclass(frozen=True)
class ModuleInfo:
    """One file of the repo as the module it is imported as."""

    name: str
    path: Path
    is_package: bool  # an __init__.py
    imports: tuple[ImportInfo, ...] = ()  # top-level ones (conditional ones included)
    bindings: Mapping[str, Binding] = field(default_factory=dict)  # top-level name -> kind
    functions: tuple[str, ...] = ()  # dotted, every function of the file (nested, methods)
    classes: tuple[str, ...] = ()  # dotted, every class of the file
    has_main_guard: bool = False
    variables: Mapping[str, str] = field(default_factory=dict)  # top-level name -> type
    syntax_error: str | None = None  # why the stdlib could not parse it (then nothing else)

    def imported(self, local: str) -> ImportInfo | None:
        """The import binding ``local`` at top level (the last one wins, as at run time)."""
        found = None
        for item in self.imports:
            if item.local == local:
                found = item
        return found
