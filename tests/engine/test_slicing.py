"""Slicing: LibCST parses only the definitions a file's rules could act on, and nothing a run
reports or writes differs from processing the whole file.

The unit tests pin what is left out and how the file comes back; the differential tests run
every codemod fixture, and every file of this environment's site-packages and standard
library that reaches LibCST, both ways and compare results, bytes, findings and lines.
"""

from __future__ import annotations

import ast
import sysconfig
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from scaffold.codemods import all_codemods
from scaffold.codemods.thread_context import ThreadContext
from scaffold.engine import Settings, runner
from scaffold.engine.slicing import MARK, slice_module

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WORDS = ("ThreadPoolExecutor", "Thread")
SITES = ("submit",)


def _slice(source: str | bytes, words=WORDS, sites=SITES):
    data = source.encode() if isinstance(source, str) else source
    return slice_module(data, ast.parse(data), words, sites)


def _kept(sliced) -> str:
    return sliced.source.decode()


MODULE = '''\
"""A service."""
import threading
from concurrent.futures import ThreadPoolExecutor

LIMIT = 3


def unrelated(a, b):
    return a + b


@decorated(LIMIT)
def also_unrelated():
    print("nothing here")


def start(fn):
    threading.Thread(target=fn).start()
'''


def test_definitions_naming_no_word_become_stubs_and_come_back_byte_for_byte():
    sliced = _slice(MODULE)
    kept = _kept(sliced)
    assert "def start(fn):\n    threading.Thread(target=fn).start()" in kept
    assert "return a + b" not in kept and "print(" not in kept and "@decorated" not in kept
    assert kept.count(MARK.decode()) == 2  # one line each, binding the same names
    assert "def unrelated(): ..." in kept and "def also_unrelated(): ..." in kept
    assert "LIMIT = 3" in kept and "import threading" in kept  # module statements stay
    assert sliced.restore(sliced.source) == MODULE.encode()


def test_lines_of_the_slice_map_to_the_file():
    sliced = _slice(MODULE)
    file_lines = MODULE.splitlines()
    for number, line in enumerate(_kept(sliced).splitlines(), 1):
        if MARK.decode() not in line:
            assert file_lines[sliced.original_line(number) - 1] == line
    stub = next(n for n, line in enumerate(_kept(sliced).splitlines(), 1)
                if "also_unrelated" in line)
    assert file_lines[sliced.original_line(stub) - 1] == "@decorated(LIMIT)"


def test_crlf_lines_and_indentation_survive_in_stubs_and_restore():
    source = ("import threading\r\n\r\nclass Holder:\r\n    def quiet(self):\r\n"
              "        return 1\r\n\r\n    def loud(self):\r\n"
              "        threading.Thread(target=print).start()\r\n")
    sliced = _slice(source)
    assert b"    def quiet(): ...  # " + MARK in sliced.source
    assert all(line.endswith(b"\r\n") for line in sliced.source.splitlines(keepends=True))
    assert sliced.restore(sliced.source) == source.encode()


def test_a_bom_and_the_first_line_are_never_stubbed():
    source = "\ufeffdef first():\n    return 1\n\n\nasync def second():\n    return 2\n"
    sliced = _slice(source.encode("utf-8"))
    assert sliced.source.startswith(b"\xef\xbb\xbfdef first():\n    return 1")
    assert b"async def second(): ..." in sliced.source


# What carries a site across definitions: each source has a site thread-context rewrites
# only if slicing keeps what leads to it, and a definition slicing leaves out.
CARRIED = {
    "a class's name": """\
import threading


class Worker(threading.Thread):
    def helper(self):
        return 1


def spawn(fn):
    return Worker(target=fn)


def other():
    return 2
""",
    "an attribute copied in another method": """\
from concurrent.futures import ThreadPoolExecutor


class Service:
    def __init__(self):
        self.pool = ThreadPoolExecutor()

    def alias(self):
        self.backup = self.pool

    def later(self):
        self.backup.submit(print)

    def unrelated(self):
        self.name = "x"
""",
    "a pool held by a thread subclass, reached through another class": """\
import threading
from concurrent.futures import ThreadPoolExecutor


class Worker(threading.Thread):
    def __init__(self):
        super().__init__()
        self.pool = ThreadPoolExecutor()


class Boss:
    def __init__(self, worker: Worker):
        self.worker = worker

    def go(self):
        self.worker.pool.submit(print)

    def unrelated(self):
        return 1
""",
    "a parameter annotated with a class holding a pool": """\
from concurrent.futures import ThreadPoolExecutor


class Deps:
    pool: ThreadPoolExecutor


class Handler:
    def __init__(self, deps: Deps):
        self.deps = deps

    def handle(self):
        self.deps.pool.submit(print)

    def unrelated(self):
        return 3
""",
}


def test_a_thread_subclass_stays_whole_and_its_name_keeps_its_users():
    kept = _kept(_slice(CARRIED["a class's name"]))
    assert "return 1" in kept  # a member of a class whose header names a word
    assert "return Worker(target=fn)" in kept  # names the kept class
    assert "def other(): ..." in kept


def test_what_a_method_puts_into_self_keeps_the_methods_that_read_it():
    kept = _kept(_slice(CARRIED["an attribute copied in another method"]))
    assert "self.backup = self.pool" in kept and "self.backup.submit(print)" in kept
    assert "def unrelated(): ..." in kept


def test_an_annotated_parameter_carries_a_class_holding_a_pool():
    kept = _kept(_slice(CARRIED["a parameter annotated with a class holding a pool"]))
    assert "self.deps = deps" in kept and "pool: ThreadPoolExecutor" in kept
    assert "def unrelated(): ..." in kept


@pytest.mark.parametrize("source", CARRIED.values(), ids=CARRIED.keys())
def test_what_carries_a_site_across_definitions_is_rewritten_sliced_as_whole(source):
    sliced, whole = _both_ways(source.encode(), "app.py", [ThreadContext])
    assert whole[1] is not None and "copy_context" in whole[0].updated  # a site to rewrite
    _assert_same(sliced, whole)


def test_suppressions_and_lines_after_left_out_code_are_the_files():
    source = (
        b"import threading\n\n\n"
        b"def unrelated():\n    a = 1\n    b = 2\n    return a + b\n\n\n"
        b"def quiet(fn):\n"
        b"    threading.Thread(target=fn).start()  # scaffold: ignore[thread-context]\n"
        b"\n\n"
        b"def noisy(fn):\n    threading.Thread(target=fn).start()\n"
    )
    assert _slice(source) is not None
    sliced, whole = _both_ways(source, "app.py", [ThreadContext])
    _assert_same(sliced, whole)
    assert [finding.line for finding in whole[0].findings] == [15]


def test_a_module_level_alias_of_a_site_word_is_a_site_word():
    source = ("from opentelemetry import context\n\notel_detach = context.detach\n\n\n"
              "def finish(token):\n    otel_detach(token)\n\n\ndef other():\n    return 1\n")
    kept = _kept(_slice(source, words=("attach",), sites=("detach",)))
    assert "otel_detach(token)" in kept and "def other(): ..." in kept


def test_slicing_that_fails_sends_the_file_through_whole(monkeypatch):
    whole = runner._transform(MODULE.encode(), "app.py", [ThreadContext], Settings(),
                              slicing=False)

    def broken(*args, **kwargs):
        raise RecursionError("deep")

    monkeypatch.setattr(runner, "slice_module", broken)
    assert runner._transform(MODULE.encode(), "app.py", [ThreadContext], Settings()) == whole


def test_nothing_to_leave_out_or_an_unsafe_file_gives_no_slice():
    assert _slice("import threading\n\ndef f():\n    threading.Thread().start()\n") is None
    assert _slice(f"# {MARK.decode()}\n\ndef f():\n    pass\n") is None
    latin = "# -*- coding: latin-1 -*-\nx = 'é'\n\ndef f():\n    pass\n".encode("latin-1")
    assert _slice(latin) is None
    # Python reads the identifier \ufb01le as "file": its bytes would not match the word
    ligature = "import threading\n\ndef \ufb01le():\n    pass\n\ndef g():\n    file()\n"
    assert _slice(ligature, words=("Thread", "file")) is None
    assert _slice("x = 'caf\u00e9'\n\ndef f():\n    pass\n") is not None  # NFKC already
    assert _slice("x = 'm\u00b2'\n\ndef f():\n    pass\n") is not None  # no identifier


def test_restore_refuses_a_stub_a_rule_touched():
    sliced = _slice(MODULE)
    first_stub = sliced.stubs[0][0]
    assert sliced.restore(sliced.source.replace(first_stub, b"")) is None
    assert sliced.restore(sliced.source + first_stub) is None


def test_names_used_in_left_out_code_are_known():
    sliced = _slice("import threading\n\ndef a():\n    contextvars = 1\n    return x.functools\n"
                    "\n\ndef b():\n    threading.Thread().start()\n")
    assert sliced.uses_name("contextvars")
    assert not sliced.uses_name("functools")  # only ever after a dot


def test_a_codemod_avoids_a_name_only_left_out_code_binds():
    source = ('import threading\n\n\ndef unrelated():\n    contextvars = 1\n    return '
              'contextvars\n\n\ndef start(fn):\n    threading.Thread(target=fn).start()\n')
    whole = runner._transform(source.encode(), "app.py", [ThreadContext], Settings(),
                              slicing=False)[0]
    sliced = runner._transform(source.encode(), "app.py", [ThreadContext], Settings())[0]
    assert "import contextvars as _contextvars" in whole.updated
    assert sliced == whole and sliced.updated == whole.updated


# -- the differential tests: sliced and whole agree on everything --


def _both_ways(source: bytes, path: str, rules, settings: Settings | None = None):
    settings = settings or Settings()
    sliced = runner._transform(source, path, rules, settings, slicing=True)
    whole = runner._transform(source, path, rules, settings, slicing=False)
    return sliced, whole


def _assert_same(sliced, whole):
    (sliced_result, sliced_bytes, sliced_gates), (result, data, gates) = sliced, whole
    assert sliced_result == result
    assert sliced_result.updated == result.updated
    assert sliced_bytes == data and sliced_gates == gates


def _fixture_sources():
    return sorted(FIXTURES.glob("*/*/before.py")) + sorted(FIXTURES.glob("*/*/after.py"))


@pytest.mark.parametrize("path", _fixture_sources(), ids=lambda p: "/".join(p.parts[-3:]))
def test_every_fixture_gives_the_same_result_sliced_and_whole(path):
    source = path.read_bytes()
    _assert_same(*_both_ways(source, "service/app.py", all_codemods()))
    for codemod in all_codemods():
        _assert_same(*_both_ways(source, "service/app.py", [codemod]))


def _both_ways_if_parsed(path: Path):
    """For a file LibCST would parse: its size, the size of what LibCST is given (a slice,
    or the file) and both runs. None for a file the gates keep from LibCST."""
    rules, settings = all_codemods(), Settings()
    source = path.read_bytes()
    given = runner.libcst_input(source, rules, settings)
    if given is None:
        return None
    return len(source), len(given), _both_ways(source, str(path), rules, settings)


@pytest.mark.slow
@pytest.mark.parametrize("tree", ["purelib", "stdlib"])
def test_real_files_give_the_same_results_sliced_and_whole(tree):
    """Every file of this environment's site-packages (or standard library) that reaches
    LibCST (on every core: the suite's time is bounded)."""
    root = Path(sysconfig.get_paths()[tree])
    paths = [path for path in sorted(root.rglob("*.py"))
             if "site-packages" not in path.parts or "site-packages" in root.parts]
    files = sliced_files = whole_bytes = sliced_bytes = changed = 0
    with ProcessPoolExecutor() as pool:
        for compared in pool.map(_both_ways_if_parsed, paths, chunksize=16):
            if compared is None:
                continue
            size, given, both = compared
            _assert_same(*both)
            files += 1
            changed += both[1][1] is not None
            sliced_files += given < size
            whole_bytes += size
            sliced_bytes += given
    # the comparison is only worth something if slicing left much out of files that change
    assert files >= 50 and changed >= 20 and sliced_files >= files // 2
    assert sliced_bytes < 0.6 * whole_bytes
