"""The gates in front of LibCST never drop a file, or a site, a codemod would act on.

Every codemod runs twice over every fixture, the example service and (slow) a slice of real
third-party code: as shipped, and with its text prefilter, syntax gate and ``refers_to``
shortcut all switched off. The results must be identical, byte for byte and finding for
finding. The syntax index itself is pinned down case by case below.
"""

from __future__ import annotations

import ast
import json
import sysconfig
from pathlib import Path

import pytest

from scaffold.codemods import all_codemods
from scaffold.codemods.base import Codemod
from scaffold.engine import Settings, Status, process_source
from scaffold.engine.gates import SyntaxGate, SyntaxIndex, _nodes

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
EXAMPLE = ROOT / "examples" / "legacy_service"
CORPUS_PACKAGES = ("aiokafka", "anyio", "aiohttp", "redis", "opentelemetry", "quart", "grpc")


def _ungated(codemod: type[Codemod]) -> type[Codemod]:
    """The same codemod with every gate and shortcut off: it sees and resolves everything."""
    return type(codemod.__name__, (codemod,), {
        "__module__": codemod.__module__,
        "ID": codemod.ID,
        "wants": classmethod(lambda cls, source: True),
        "syntax_gate": classmethod(lambda cls, settings: None),
        "may_end_in": lambda self, node, endings: True,
    })


def _inputs() -> list[tuple[str, Path, Settings]]:
    found = []
    for case in sorted(p for p in FIXTURES.glob("*/*") if p.is_dir()):
        settings_file = case / "settings.json"
        settings = Settings(**json.loads(settings_file.read_text())) \
            if settings_file.exists() else Settings()
        for version in ("before.py", "after.py"):
            if (case / version).exists():
                found.append((f"{case.parent.name}/{case.name}/{version}", case / version,
                              settings))
    for path in sorted((EXAMPLE / "legacy_service").glob("*.py")):
        found.append((f"example/{path.name}", path, Settings(kit="legacy_service.tracekit")))
    return found


INPUTS = _inputs()


def _same(source: bytes, path: str, gated: list, ungated: list, settings: Settings) -> None:
    shipped = process_source(source, path, gated, settings)
    everything = process_source(source, path, ungated, settings)
    assert shipped.status is everything.status, (path, shipped.reason, everything.reason)
    assert shipped.findings == everything.findings, path
    assert shipped.updated == everything.updated, path


@pytest.mark.parametrize(("name", "path", "settings"), INPUTS, ids=[n for n, _, _ in INPUTS])
def test_gates_change_nothing_on_the_fixtures_and_the_example(name, path, settings):
    source = path.read_bytes()
    where = "service/app.py" if not name.startswith("example/") else f"legacy_service/{path.name}"
    codemods = list(all_codemods())
    _same(source, where, codemods, [_ungated(c) for c in codemods], settings)
    for codemod in codemods:  # the fixture's own codemod alone too, on the unchanged tree
        if name.startswith(f"{codemod.ID}/"):
            _same(source, where, [codemod], [_ungated(codemod)], settings)


@pytest.mark.slow
def test_gates_change_nothing_on_real_code():
    purelib = Path(sysconfig.get_paths()["purelib"])
    codemods = list(all_codemods())
    ungated = [_ungated(c) for c in codemods]
    settings = Settings(kit="service.tracekit")
    looked_at = kept = 0
    for package in CORPUS_PACKAGES:
        for path in sorted((purelib / package).rglob("*.py"))[:60]:
            source = path.read_bytes()
            text = source.decode("latin-1")
            if not any(codemod.wants(text) for codemod in codemods):
                continue  # the text prefilter is a substring test: the unit tests cover it
            looked_at += 1
            index = SyntaxIndex.of(source)
            kept += index is None or any(
                (gate := c.syntax_gate(settings)) is None or gate.admits(index)
                for c in codemods if c.wants(text))
            _same(source, f"{package}/{path.name}", codemods, ungated, settings)
    assert looked_at > 20 and kept < looked_at  # the slice exercises both outcomes


def _index(source: str) -> SyntaxIndex:
    index = SyntaxIndex.of(source.encode())
    assert index is not None
    return index


@pytest.mark.parametrize(("source", "name"), [
    ("import threading\nthreading.Thread(target=f)\n", "threading.Thread"),
    ("import threading as th\nth.Thread()\n", "threading.Thread"),
    ("from threading import Thread as T\nclass W(T): pass\n", "threading.Thread"),
    ("import concurrent.futures\nconcurrent.futures.ThreadPoolExecutor()\n",
     "concurrent.futures.ThreadPoolExecutor"),
    ("from concurrent import futures\nfutures.ThreadPoolExecutor()\n",
     "concurrent.futures.ThreadPoolExecutor"),
    ("def f():\n    from opentelemetry import context as c\n    c.attach(x)\n",
     "opentelemetry.context.attach"),
    ("from concurrent.futures import ThreadPoolExecutor\n"
     "def f(pool: 'Optional[ThreadPoolExecutor]'): ...\n",
     "concurrent.futures.ThreadPoolExecutor"),
    ("from opentelemetry import context\nattach = context.attach\n",
     "opentelemetry.context.attach"),
], ids=["import", "module alias", "name alias", "dotted import", "from package", "in a function",
        "quoted annotation", "module-level alias"])
def test_names_resolve_through_any_import(source, name):
    gate = SyntaxGate(names={name})
    assert gate.admits(_index(source))
    assert gate.may_admit(source)  # the text check before the ast never contradicts it


def test_the_text_check_drops_sources_that_spell_out_nothing_the_gate_needs():
    assert not SyntaxGate(names={"aiokafka.AIOKafkaProducer"}).may_admit("await bus.send(x)")
    assert not SyntaxGate(words={"run_in_executor"}).may_admit("loop.run_until_complete(x)")
    assert SyntaxGate(strings={"__main__"}, words={"x"}).may_admit("")  # strings: ask the ast
    # a dotted name needs its first part too: the import that reaches it spells that out
    thread = SyntaxGate(names={"threading.Thread"})
    assert not thread.may_admit("from .compat import Thread\nThread()\n")
    assert thread.may_admit("from threading import Thread as T\n")


@pytest.mark.parametrize(("source", "name"), [
    ("# threading.Thread(target=f)\nimport threading\n", "threading.Thread"),
    ('"""Use threading.Thread."""\nimport threading\n', "threading.Thread"),
    ("class Thread: pass\nThread()\n", "threading.Thread"),
    ("from threading import *\nThread()\n", "threading.Thread"),
    ("from .threading import Thread\nThread()\n", "threading.Thread"),
], ids=["comment", "docstring", "a local class", "star import", "relative import"])
def test_names_the_code_does_not_import_are_not_seen(source, name):
    assert not SyntaxGate(names={name}).admits(_index(source))


def test_words_and_strings_come_from_code_only():
    index = _index('# scope_manager\nx = tracer.scope_manager\nif __name__ == "__main__": f()\n')
    assert SyntaxGate(words={"scope_manager"}).admits(index)
    assert SyntaxGate(strings={"__main__"}).admits(index)
    assert not SyntaxGate(words={"__main__"}).admits(_index("# scope_manager\n"))


def test_source_the_stdlib_cannot_parse_has_no_index_so_every_gate_lets_it_through():
    assert SyntaxIndex.of(b"def f(:\n") is None
    result = process_source(b"import threading\ndef f(:\n    threading.Thread()\n",
                            "service/app.py", list(all_codemods()))
    assert result.status is Status.FAILED and "syntax error" in (result.reason or "")


DOTTED_STRINGS = [
    "ThreadPoolExecutor", "concurrent.futures.ThreadPoolExecutor", " deps.pool ", "None",
    "None.real", "True.x.y", "a.None", "if", "if.x", "x.if", "match", "type.case", "await",
    "print.x", "__debug__", "_", "a1._b2.C3",
]


@pytest.mark.parametrize("text", DOTTED_STRINGS)
def test_a_dotted_string_is_indexed_as_parsing_it_would(text):
    """Plain dotted strings skip ``ast.parse`` (most string constants are such); the names
    they give must be the parse's, keywords and constants included."""
    quick, parsed = SyntaxIndex(), SyntaxIndex()
    quick._add_annotation(text)
    parsed._add_parsed_annotation(text)
    assert (quick.chains, quick.words) == (parsed.chains, parsed.words)


def test_the_index_walk_meets_every_node_ast_walk_meets():
    for path in [*sorted(FIXTURES.glob("*/*/before.py")), Path(ast.__file__)]:
        tree = ast.parse(path.read_bytes())
        assert sorted(map(id, _nodes(tree))) == sorted(map(id, ast.walk(tree)))
