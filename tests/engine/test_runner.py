"""The parse-once runner: encodings survive, bad files are reported and untouched, runs agree."""

from __future__ import annotations

import gc
import stat
from pathlib import Path

import libcst as cst
import pytest

from scaffold.api import Options, run
from scaffold.codemods import all_codemods, codemods_by_id
from scaffold.codemods.base import Codemod
from scaffold.engine import FileResult, Kind, Settings, Status, process_source, runner

UNGUARDED = (
    "from opentelemetry import context\n"
    "\n"
    "\n"
    "def handle(ctx):\n"
    "    token = context.attach(ctx)\n"
    "    work()\n"
    "    context.detach(token)\n"
)
GUARDED_BODY = "    try:\n        work()\n    finally:\n        context.detach(token)\n"


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _retrofit(tmp_path: Path, **options) -> dict[str, object]:
    result = run([tmp_path], all_codemods(), Options(write=True, jobs=1, **options))
    return {Path(r.path).name: r for r in result.results}


@pytest.mark.parametrize(
    ("name", "encode"),
    [
        ("crlf", lambda text: text.replace("\n", "\r\n").encode()),
        ("bom", lambda text: b"\xef\xbb\xbf" + text.encode()),
        ("tabs", lambda text: text.replace("    ", "\t").encode()),
        (
            "latin-1 cookie",
            lambda text: ("# -*- coding: latin-1 -*-\n# caf\xe9\n" + text).encode("latin-1"),
        ),
    ],
)
def test_line_endings_bom_cookie_and_tabs_survive_a_rewrite(tmp_path, name, encode):
    path = _write(tmp_path / "svc.py", encode(UNGUARDED))
    results = _retrofit(tmp_path)
    assert results["svc.py"].status is Status.CHANGED
    data = path.read_bytes()
    expected_body = GUARDED_BODY
    if name == "tabs":
        expected_body = expected_body.replace("    ", "\t")
    if name == "crlf":
        expected_body = expected_body.replace("\n", "\r\n")
        assert b"\n" not in data.replace(b"\r\n", b"")
    encoding = "latin-1" if name == "latin-1 cookie" else "utf-8"
    assert expected_body.encode(encoding) in data
    assert data.startswith(b"\xef\xbb\xbf") is (name == "bom")
    if name == "latin-1 cookie":
        assert b"# caf\xe9\n" in data
    compile(data, "svc.py", "exec")


def test_unreadable_files_are_reported_untouched_and_the_run_goes_on(tmp_path):
    broken = {
        "syntax.py": b"from opentelemetry import context\ndef f(:\n    context.attach(x)\n",
        "binary.py": b"\x00\x01opentelemetry attach\x00\xff",
        "undecodable.py": b"from opentelemetry import context\nx = '\xe9'  # attach\n",
    }
    for name, data in broken.items():
        _write(tmp_path / name, data)
    _write(tmp_path / "empty.py", b"")
    good = _write(tmp_path / "good.py", UNGUARDED)
    results = _retrofit(tmp_path)
    for name, data in broken.items():
        assert results[name].status is Status.FAILED
        assert results[name].reason
        assert (tmp_path / name).read_bytes() == data
    assert results["syntax.py"].reason.startswith("syntax error at line")
    assert "binary" in results["binary.py"].reason
    assert results["empty.py"].status is Status.UNCHANGED
    assert results["good.py"].status is Status.CHANGED and GUARDED_BODY in good.read_text()


def test_a_read_only_file_is_reported_and_left_alone(tmp_path):
    path = _write(tmp_path / "locked.py", UNGUARDED)
    path.chmod(0o444)
    try:
        result = _retrofit(tmp_path)["locked.py"]
        assert result.status is Status.FAILED and "read-only" in result.reason
        assert path.read_text() == UNGUARDED
    finally:
        path.chmod(0o644)


def test_writes_keep_mode_bits_and_leave_no_temporary_files(tmp_path):
    path = _write(tmp_path / "script.py", UNGUARDED)
    path.chmod(0o750)
    _retrofit(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["script.py"]


def test_check_mode_never_writes(tmp_path):
    path = _write(tmp_path / "svc.py", UNGUARDED)
    result = run([tmp_path], all_codemods(), Options(write=False, jobs=1))
    assert result.exit_code == 1 and result.changed
    assert path.read_text() == UNGUARDED


def test_a_file_deleted_during_the_run_is_reported(tmp_path):
    doomed = _write(tmp_path / "doomed.py", UNGUARDED)

    class DeletesWhileFiltering(Codemod):
        """Deletes the file after discovery, as a concurrent checkout would."""

        ID = "deletes-while-filtering"

        @classmethod
        def wants(cls, source: str) -> bool:
            doomed.unlink(missing_ok=True)
            return True

    result = run([tmp_path], [DeletesWhileFiltering], Options(write=True, jobs=1))
    (only,) = result.results
    assert only.status is Status.FAILED and "cannot read" in only.reason
    assert result.exit_code == 2


@pytest.mark.parametrize("prefilter_in_workers", [False, True])
def test_parallel_results_match_serial_results(tmp_path, monkeypatch, prefilter_in_workers):
    if prefilter_in_workers:  # as for a large tree; a small one is prefiltered in-process
        monkeypatch.setattr(runner._Pool, "PARALLEL_PREFILTER", 1)
    for number in range(12):
        _write(tmp_path / f"pkg{number % 3}" / f"mod{number}.py",
               UNGUARDED if number % 2 else "import threading\nthreading.Thread(target=f)\n")
        _write(tmp_path / f"pkg{number % 3}" / f"plain{number}.py", f"x = {number}\n")
    _write(tmp_path / "pkg0" / "broken.py", "from opentelemetry import attach\ndef (:\n")

    def snapshot(jobs: int):
        result = run([tmp_path], all_codemods(), Options(jobs=jobs))
        return [(r.path, r.status, r.findings, r.reason, r.updated) for r in result.results]

    serial = snapshot(1)
    assert [entry[0] for entry in serial] == sorted(entry[0] for entry in serial)
    assert snapshot(2) == serial


def test_a_run_collects_garbage_less_often_and_then_restores_the_callers_setting(
        tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(runner, "_transform", lambda *args, **kwargs: (
        seen.append(gc.get_threshold()[0]) or (FileResult(args[1], Status.UNCHANGED), None, 2)))
    _write(tmp_path / "app.py", "import threading\nthreading.Thread(target=f)\n")
    callers = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's default: another library may have raised it
    try:
        run([tmp_path], all_codemods(), Options(jobs=1))
        assert seen == [runner._GC_THRESHOLD] and gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*callers)


def test_an_unsafe_codemod_only_reports_unless_opted_in(tmp_path):
    class RenamesWork(Codemod):
        """Renames work() to run() (a stand-in for a fix that may change behaviour)."""

        ID = "renames-work"
        FIX_SAFETY = "unsafe"

        def leave_Name(self, original_node, updated_node):
            if original_node.value == "work" and self.record_change(original_node, "renamed"):
                return updated_node.with_changes(value="run")
            return updated_node

    source = b"work()\n"
    held = process_source(source, "a.py", [RenamesWork])
    assert held.status is Status.UNCHANGED
    (finding,) = held.findings
    assert finding.kind is Kind.FINDING and "--unsafe-fixes" in finding.message
    applied = process_source(source, "a.py", [RenamesWork], Settings(unsafe_fixes=True))
    assert applied.status is Status.CHANGED and applied.updated == "run()\n"


def test_a_rule_that_crashes_fails_only_its_file(tmp_path):
    class Crashes(Codemod):
        ID = "crashes"

        def visit_Module(self, node):
            raise ValueError("boom")

    result = process_source(b"x = 1\n", "a.py", [Crashes])
    assert result.status is Status.FAILED and "rule crashes" in result.reason


def test_later_codemods_report_lines_of_the_file_on_disk():
    """opentracing-scope adds an import above; thread-context's report keeps the original line."""
    source = (
        "def handle(tracer, span, loop, executor):\n"
        "    with tracer.scope_manager.activate(span, True):\n"
        "        loop.run_in_executor(executor, work)\n"
    )
    result = process_source(source.encode(), "a.py", all_codemods())
    assert result.status is Status.CHANGED
    assert result.updated.startswith("from opentelemetry import trace\n")
    lines = {f.rule_id: f.line for f in result.findings}
    assert lines == {"opentracing-scope": 2, "thread-context": 3}


def test_imports_are_added_once_after_docstring_and_future_imports():
    source = (
        '"""Service."""\n'
        "from __future__ import annotations\n"
        "import threading\n"
        "from opentelemetry import trace as otel\n"
        "def f(tracer, span):\n"
        "    threading.Thread(target=a).start()\n"
        "    threading.Thread(target=b).start()\n"
        "    with tracer.scope_manager.activate(span, True):\n"
        "        threading.Timer(1, c).start()\n"
    )
    result = process_source(source.encode(), "a.py", all_codemods())
    module = cst.parse_module(result.updated)
    header = [module.code_for_node(s).strip() for s in module.body[:6]]
    assert header == [  # in the block's own (isort's) order, after the docstring and future
        '"""Service."""',
        "from __future__ import annotations",
        "import contextvars",
        "import functools",
        "import threading",
        "from opentelemetry import trace as otel",
    ]
    assert result.updated.count("import contextvars") == 1
    assert "otel.use_span(span, end_on_exit=True)" in result.updated


def test_suppression_comments_silence_check_findings_too():
    from scaffold.checks import checks_by_id

    extract = checks_by_id()["extract-discarded"]
    source = (
        "from opentelemetry import propagate\n"
        "def f(m):\n"
        "    propagate.extract(m.headers)\n"
        "    propagate.extract(m.headers)  # scaffold: ignore[extract-discarded]\n"
        "    propagate.extract(m.headers)  # scaffold: ignore\n"
        "    propagate.extract(m.headers)  # scaffold: ignore[token-finally]\n"
        "    s = '# scaffold: ignore'; propagate.extract(m.headers)\n"
    )
    result = process_source(source.encode(), "a.py", [extract])
    assert sorted(f.line for f in result.findings) == [3, 6, 7]


def test_prefiltered_files_are_never_parsed(monkeypatch):
    parsed = []
    original = cst.parse_module
    monkeypatch.setattr(cst, "parse_module", lambda src: parsed.append(src) or original(src))
    process_source(b"print('nothing to see')\n", "a.py", all_codemods())
    assert parsed == []
    process_source(b"from opentelemetry import context\ncontext.attach(x)\n", "b.py",
                   [codemods_by_id()["token-finally"]])
    assert len(parsed) == 1


DISCARDED = (
    "from opentelemetry import propagate\n"
    "\n"
    "\n"
    "def on_message(message):\n"
    "    ctx = propagate.extract(message.headers)\n"
)


def _service_with_tests(root: Path, config: str = "") -> tuple[Path, Path]:
    """A service whose code and whose test both hold a site: (the code, the test)."""
    _write(root / "pyproject.toml", f'[project]\nname = "orders"\n{config}')
    code = _write(root / "orders" / "handler.py", UNGUARDED)
    _write(root / "orders" / "__init__.py", "")
    test = _write(root / "tests" / "unit" / "test_handler.py", UNGUARDED)
    return code, test


def test_test_files_are_left_alone_by_codemods_by_default(tmp_path):
    code, test = _service_with_tests(tmp_path)
    results = _retrofit(tmp_path)
    assert results["handler.py"].status is Status.CHANGED
    assert GUARDED_BODY in code.read_text()
    assert results["test_handler.py"].status is Status.UNCHANGED
    assert not results["test_handler.py"].findings
    assert test.read_text() == UNGUARDED


@pytest.mark.parametrize("how", ["config", "option"])
def test_include_tests_lets_codemods_rewrite_test_files(tmp_path, how):
    config = "\n[tool.scaffold]\ninclude-tests = true\n" if how == "config" else ""
    _, test = _service_with_tests(tmp_path, config)
    results = _retrofit(tmp_path, **({"include_tests": True} if how == "option" else {}))
    assert results["test_handler.py"].status is Status.CHANGED
    assert GUARDED_BODY in test.read_text()


def test_the_command_line_flag_overrides_the_config(tmp_path, capsys):
    from scaffold.cli import main

    _, test = _service_with_tests(tmp_path, "\n[tool.scaffold]\ninclude-tests = false\n")
    assert main(["retrofit", "--check", str(tmp_path)]) == 1  # the service code
    assert "test_handler.py" not in capsys.readouterr().out
    assert main(["retrofit", "--check", "--include-tests", str(tmp_path)]) == 1
    assert "test_handler.py" in capsys.readouterr().out
    assert test.read_text() == UNGUARDED


def test_checks_still_read_test_files(tmp_path):
    from scaffold.checks import all_checks

    _, test = _service_with_tests(tmp_path)
    test.write_text(DISCARDED)
    result = run([tmp_path], (*all_codemods(), *all_checks()), Options(jobs=1))
    by_file = {Path(r.path).name: {f.rule_id for f in r.findings} for r in result.results}
    assert by_file["test_handler.py"] == {"extract-discarded"}
    assert "token-finally" in by_file["handler.py"]


THREADED = "import threading\n\n\ndef run():\n    threading.Thread(target=work).start()\n"


def test_a_test_file_rewritten_on_request_never_gets_a_kit_vendored(tmp_path):
    from scaffold.vendor import KitLocation, write_vendored_kit

    _write(tmp_path / "pyproject.toml", '[project]\nname = "orders"\n')
    _write(tmp_path / "orders" / "__init__.py", "")
    _write(tmp_path / "orders" / "tests" / "__init__.py", "")
    test = _write(tmp_path / "orders" / "tests" / "test_threads.py", THREADED)
    options = Options(write=True, jobs=1, include_tests=True, vendor_kit=True)
    run([tmp_path], all_codemods(), options)
    assert not list(tmp_path.rglob("tracekit"))
    assert "copy_context" in test.read_text()  # the standard library's way instead
    assert run([tmp_path], all_codemods(), options).changed == []

    # a kit that is there already is one a test may import
    write_vendored_kit(KitLocation("orders.tracekit", tmp_path / "orders" / "tracekit"))
    test.write_text(THREADED)
    run([tmp_path], all_codemods(), options)
    assert "from orders.tracekit import" in test.read_text()


def test_the_generated_tests_are_never_rewritten_even_with_include_tests(tmp_path):
    _, test = _service_with_tests(tmp_path, '\n[tool.scaffold]\ntests-dir = "qa/tracing"\n')
    generated = _write(tmp_path / "qa" / "tracing" / "test_trace_handler.py", UNGUARDED)
    results = _retrofit(tmp_path, include_tests=True)
    assert results["test_handler.py"].status is Status.CHANGED
    assert results["test_trace_handler.py"].status is Status.UNCHANGED
    assert generated.read_text() == UNGUARDED
