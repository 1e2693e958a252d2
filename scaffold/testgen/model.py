"""What the test generator knows about a site, and the plan a template turns into a test.

Everything here is plain data: the locator and planner (``scaffold.testgen.locate``) fill it
in from the code, the templates under ``templates/testgen`` render it, and the mutation check
(``scaffold.mutation``) reads a site's form (``Site.shape``, ``Site.target``) to revert it. Kinds,
shapes and recipes are ``StrEnum``s: they compare equal to the strings the templates test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class SiteKind(StrEnum):
    """What a site does, and so what its test asserts."""

    CONSUME = "consume"  # a CONSUMER span around the handling of a Kafka record
    RESTORE = "restore"  # a span or context continuing the trace in a message's metadata
    PRODUCE = "produce"  # a send whose headers carry the sending span
    INJECT = "inject"  # trace context written into a carrier that is then sent
    THREAD = "thread"  # work handed to a thread, carrying the submitting context
    TOKEN = "token"  # an attached context detached in a finally
    BOOTSTRAP = "bootstrap"  # tracing set-up at start-up: nothing to propagate, nothing to drive


CONSUME, RESTORE, PRODUCE, INJECT, THREAD, TOKEN, BOOTSTRAP = SiteKind
KINDS = tuple(SiteKind)


class Shape(StrEnum):
    """How an instrumentation is written: the first half of a site's ``form``
    (``<shape>:<target>``, the target being the name the shape is about)."""

    CALL = "call"  # ``traced_send(...)``: a call to the target
    WITH = "with"  # ``with consume_span(...):``
    FOR = "for"  # ``for record in consume_batch(...):``
    ARG = "arg"  # ``copy_context().run`` passed as an argument
    PARTIAL = "partial"  # ``functools.partial(copy_context().run, ...)``
    LAMBDA = "lambda"  # ``pool.map(lambda *args, _fn=f, _context=copy_context(): ...)``
    BASE = "base"  # a class deriving from the target (``TracedThread``)
    STMT = "stmt"  # ``start()`` of a Thread subclass capturing ``copy_context().run``
    TRY_FINALLY = "try-finally"  # ``token = attach(...)`` detached in a ``finally``


# Targets of the forms that name no kit function.
COPY_CONTEXT_TARGET = "copy_context"
START_CAPTURE = "start-capture"


def form(shape: Shape, target: str) -> str:
    """A site's ``form``: ``call:traced_send``, ``try-finally:token``..."""
    return f"{shape.value}:{target}"


def split_form(text: str) -> tuple[Shape, str]:
    """The shape and the target of a ``form``."""
    shape, _, target = text.partition(":")
    return Shape(shape), target


class Recipe(StrEnum):
    """How a test builds a value (``Value.recipe``): the template macro that renders it."""

    BUILD = "build"
    KEYS = "keys"
    JSON = "json"
    RECORD = "record"
    CONSUMER = "consumer"
    CARRIER = "carrier"
    MODEL = "model"
    POISON = "poison"
    CONTEXT = "context"
    RECORDER = "recorder"
    DUMP = "dump"
    EXPRESSION = "expression"
    RUNNER = "runner"
    BATCH = "batch"
    FILL = "fill"
    QUEUE = "queue"
    PASSED = "passed"


_FROM_CREATION = {Recipe.KEYS, Recipe.JSON, Recipe.RECORD, Recipe.CONSUMER, Recipe.CARRIER,
                  Recipe.MODEL, Recipe.CONTEXT, Recipe.QUEUE}


@dataclass(frozen=True)
class Site:
    """One instrumented place in a repository.

    ``form`` names the instrumentation as written (``call:traced_send``, ``with:consume_span``,
    ``try-finally:detach`` ...); ``line``/``column`` (1-based) locate the node that form names,
    so the mutation check can put back the un-instrumented code at exactly that place.
    """

    kind: SiteKind
    form: str  # ``form(shape, target)``
    path: str  # relative to the repository root, with forward slashes
    module: str  # dotted import name of the file
    line: int
    column: int
    code: str  # the site's first line, stripped
    entry: str | None  # qualified name of the function (or thread class) a test drives

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def shape(self) -> Shape:
        return split_form(self.form)[0]

    @property
    def target(self) -> str:
        return split_form(self.form)[1]


@dataclass(frozen=True)
class Value:
    """How a test builds one value; ``recipe`` picks the template macro that renders it.

    Recipes: ``build`` (from the parameter's type hint, with ``overrides``), ``keys`` / ``json``
    (a dict, or its JSON, with the keys the code reads), ``record`` (a real ConsumerRecord,
    its value an ``model`` envelope when known), ``consumer`` (a fake consumer of that record),
    ``carrier`` (a dict carrying the message's trace context), ``model`` (the parameter's type
    with ``attribute`` set to the carrier), ``poison`` (raises when used), ``context`` (an
    attached context), ``recorder`` (a stand-in that records calls), ``dump`` (a model's data),
    ``expression`` (the value of ``label``, code the site compares a field with, in its module),
    ``runner`` (a stand-in whose ``attribute`` method, or itself, runs the callable it is given),
    ``batch`` (the record as a ``getmany()`` result), ``fill`` (an override: an optional field
    built from its hint, which the code refuses when empty), ``queue`` (a stand-in Redis client
    holding one item with ``keys`` and the message's trace context, then stopping its loop).
    """

    recipe: Recipe
    label: str = ""
    keys: tuple[str, ...] = ()
    model: str | None = None  # dotted name in the site module's namespace
    attribute: str | None = None
    overrides: tuple[tuple[str, Value], ...] = ()


@dataclass(frozen=True)
class Argument:
    name: str
    value: Value


@dataclass(frozen=True)
class Patch:
    """Replace ``owner.name`` for the test.

    ``owner``: ``module`` (a global of the site module), ``class`` (an attribute of the class
    holding the entry), ``subject`` (the instance under test), ``argument`` (a built argument,
    ``owner_name`` says which) or ``import`` (an attribute of the imported module
    ``owner_name``, e.g. ``httpx.get``). ``action``: ``probe`` (records, returns a recorder),
    ``fail`` (raises InjectedFailure), ``value`` (set to ``value``), ``factory`` (a callable
    returning ``value``, for a class the code instantiates).
    """

    action: str
    owner: str
    name: str
    label: str = ""
    value: Value | None = None
    owner_name: str = ""


@dataclass(frozen=True)
class Case:
    """One generated test (two for consume/restore: with and without trace context)."""

    site: Site
    name: str
    summary: str
    skip: str | None = None
    is_async: bool = False
    subject: str = "module"  # "module", "instance" or "class"
    subject_class: str | None = None
    function: str | None = None  # attribute called on the subject; None: start a thread class
    patches: tuple[Patch, ...] = ()
    arguments: tuple[Argument, ...] = ()
    label: str = ""  # what the assertion looks at (probe or recorder label)
    sends: tuple[str, ...] = ()  # produce: the methods of ``label`` that send (each must carry)
    returned: bool = False  # inject: the carrier is the call's return value
    without_context: bool = False  # consume/restore: also test a message with no context
    record: Value | None = None  # consume/restore: the record handed over (header + envelope)
    stops: tuple[tuple[str, str], ...] = ()  # (attribute of the subject, value) ending its loop
    filled: tuple[str, str] | None = None  # inject: (parameter, attribute) the call fills in

    @property
    def test_names(self) -> tuple[str, ...]:
        """The test functions generated for this case."""
        if self.skip is None and self.site.kind in (CONSUME, RESTORE):
            names = [f"{self.name}_continues_the_message_trace"]
            if self.without_context:
                names.append(f"{self.name}_without_context_still_gets_a_span")
            return tuple(names)
        return (self.name,)

    @property
    def uses_creation(self) -> bool:
        """Whether a value of the test is built from the message-creation span."""
        values = [argument.value for argument in self.arguments]
        values += [patch.value for patch in self.patches if patch.value is not None]
        if self.record is not None:
            return True
        while values:
            value = values.pop()
            if value.recipe in _FROM_CREATION:
                return True
            values.extend(inner for _, inner in value.overrides)
        return False


@dataclass
class ModuleTests:
    """Everything generated for one source module."""

    module: str
    path: str
    cases: list[Case] = field(default_factory=list)
    test_file: str | None = None  # the test module's file name when not the default

    @property
    def driven(self) -> list[Case]:
        return [case for case in self.cases if case.skip is None]

    @property
    def skipped(self) -> list[Case]:
        return [case for case in self.cases if case.skip is not None]
