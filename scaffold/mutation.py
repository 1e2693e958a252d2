"""Mutation check of the generated tracing tests: do they notice a removed instrumentation?

``python -m scaffold.mutation PATH`` (``make mutation`` runs it on ``examples/legacy_service``)
copies PATH, retrofits the copy (which writes its tracing tests), runs those tests once as
the baseline, then, for each instrumented site whose tests passed, puts back the
un-instrumented form of that one site and runs the generated tests again. A site is killed
when at least one of them fails. It prints every site's verdict, the kill rate over the
driven sites, and the survivors; the exit code is 0 only when every driven site is killed.

The un-instrumented form of a site is what the code does without its instrumentation:
``traced_send(p, ...)`` becomes ``p.send_and_wait(...)``, a ``with consume_span(...)`` or
``with restore_span(...)`` (or ``restore_from_queue``) block becomes its body, an injection
(or a ``capture_for_queue`` of a queued item) becomes its carrier,
``submit(pool, fn)`` becomes ``pool.submit(fn)``, ``copy_context().run`` is dropped, and a
detach moves out of its ``finally`` to after the block. The repository-level contract test
is left out of these runs: it fails on every such change by design.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from scaffold.kit_api import (
    CAPTURE_FOR_QUEUE,
    CONSUME_BATCH,
    EXECUTOR_MAP,
    INJECT_HEADERS,
    INJECT_METADATA,
    INJECT_TRACE_CONTEXT,
    RUN_IN_EXECUTOR,
    SUBMIT,
    TRACED_PUBLISH,
    TRACED_SEND,
    TRACED_THREAD,
    TRACED_TIMER,
    WITH_CONTEXT,
)
from scaffold.testgen.generate import CONTRACT, MODULE_PREFIX, find_sites
from scaffold.testgen.model import COPY_CONTEXT_TARGET, START_CAPTURE, Case, Shape, Site

KILLED, SURVIVED, NOT_DRIVEN = "killed", "survived", "not driven"


class NotReverted(Exception):
    """The site's un-instrumented form could not be written (a bug: the site is reported)."""


# -- putting back the un-instrumented form of one site --


def _expr(code: str) -> cst.BaseExpression:
    return cst.parse_expression(code)


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _positional(call: cst.Call) -> list[cst.Arg]:
    return [arg for arg in call.args if arg.keyword is None]


def _without_comma(arg: cst.Arg) -> cst.Arg:
    return arg.with_changes(comma=cst.MaybeSentinel.DEFAULT)


def _args(args: Sequence[cst.Arg]) -> list[cst.Arg]:
    """Arguments with commas fixed up after some were removed."""
    args = list(args)
    if args:
        args[-1] = _without_comma(args[-1])
    return [
        arg if index == len(args) - 1 or arg.comma is not cst.MaybeSentinel.DEFAULT
        else arg.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        for index, arg in enumerate(args)
    ]


def _method_call(receiver: cst.BaseExpression, method: str, args: Sequence[cst.Arg]) -> cst.Call:
    bare = isinstance(receiver, (cst.Name, cst.Attribute, cst.Call)) or receiver.lpar
    receiver = receiver if bare else cst.parse_expression(f"({_code(receiver)})")
    return cst.Call(func=cst.Attribute(value=receiver, attr=cst.Name(method)), args=_args(args))


def _revert_call(site: Site, call: cst.Call) -> cst.BaseExpression:
    shape, name = site.shape, site.target
    positional = _positional(call)
    if shape is Shape.CALL and name == TRACED_SEND:
        wait = next((a for a in call.args if a.keyword and a.keyword.value == "wait"), None)
        method = "send" if wait is not None and _code(wait.value) == "False" else "send_and_wait"
        rest = [a for a in call.args if a is not positional[0] and a is not wait]
        return _method_call(positional[0].value, method, rest)
    if shape is Shape.CALL and name == TRACED_PUBLISH:
        rest = [a for a in call.args if a is not positional[0]
                and not (a.keyword is not None and a.keyword.value == "headers_as")]
        return cst.Call(func=positional[0].value, args=_args(rest))
    if name in (INJECT_TRACE_CONTEXT, "inject", INJECT_METADATA, INJECT_HEADERS,
                CAPTURE_FOR_QUEUE, WITH_CONTEXT):
        if positional:
            return positional[0].value
        item = next((a for a in call.args if a.keyword and a.keyword.value == "item"), None)
        return item.value if item is not None else _expr("{}")
    if name in (SUBMIT, EXECUTOR_MAP):
        rest = [a for a in call.args if a is not positional[0]]
        return _method_call(positional[0].value, "submit" if name == SUBMIT else "map", rest)
    if shape is Shape.CALL and name == RUN_IN_EXECUTOR:
        loop = positional[0].value
        receiver = _expr("__import__('asyncio').get_running_loop()") if _code(loop) == "None" \
            else _expr(f"({_code(loop)} or __import__('asyncio').get_running_loop())")
        return _method_call(receiver, "run_in_executor",
                            [a for a in call.args if a is not positional[0]])
    if name in (TRACED_THREAD, TRACED_TIMER):
        plain = "Thread" if name == TRACED_THREAD else "Timer"
        return call.with_changes(func=_expr(f"__import__('threading').{plain}"))
    if shape is Shape.ARG and name == COPY_CONTEXT_TARGET:
        carried = next(a for a in call.args if COPY_CONTEXT_TARGET in _code(a.value))
        return call.with_changes(args=_args([a for a in call.args if a is not carried]))
    if shape is Shape.PARTIAL and name == COPY_CONTEXT_TARGET:
        return positional[1].value
    raise NotReverted(f"no un-instrumented form for {site.form}")


class _Revert(cst.CSTTransformer):
    """Rewrite the one node of ``site`` (found by its position) to its un-instrumented form."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, site: Site) -> None:
        super().__init__()
        self.site = site
        self.done = False
        self._shape, self._target = site.shape, site.target
        self._token = self._target if self._shape is Shape.TRY_FINALLY else None

    def _is(self, shape: Shape, target: str) -> bool:
        return (self._shape, self._target) == (shape, target)

    def _at(self, node: cst.CSTNode) -> bool:
        start = self.get_metadata(PositionProvider, node).start
        return (start.line, start.column + 1) == (self.site.line, self.site.column)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        # ``TracedThread(...).start()``: both calls start here; the inner one is the site
        if (
            not self.done
            and self._shape in (Shape.CALL, Shape.ARG, Shape.PARTIAL)
            and self._at(original_node)
        ):
            self.done = True
            return _revert_call(self.site, updated_node)
        return updated_node

    def leave_Lambda(self, original_node: cst.Lambda, updated_node: cst.Lambda):
        if self._is(Shape.LAMBDA, COPY_CONTEXT_TARGET) and self._at(original_node):
            self.done = True
            return next(p.default for p in updated_node.params.params if p.name.value == "_fn")
        return updated_node

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
        if self._is(Shape.BASE, TRACED_THREAD) and self._at(original_node):
            self.done = True
            return updated_node.with_changes(value=_expr("__import__('threading').Thread"))
        return updated_node

    def leave_With(self, original_node: cst.With, updated_node: cst.With):
        if not (self._shape is Shape.WITH and self._at(original_node)):
            return updated_node
        self.done = True
        name = self._target
        items = [item for item in updated_node.items if name not in _code(item.item)]
        if items:
            items[-1] = items[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            return updated_node.with_changes(items=items)
        body = list(updated_node.body.body)
        body[0] = body[0].with_changes(leading_lines=updated_node.leading_lines)
        return cst.FlattenSentinel(body)

    def leave_For(self, original_node: cst.For, updated_node: cst.For) -> cst.For:
        if not (self._is(Shape.FOR, CONSUME_BATCH) and self._at(original_node)):
            return updated_node
        self.done = True
        assert isinstance(updated_node.iter, cst.Call)
        batch = _code(_positional(updated_node.iter)[0].value)
        plain = _expr(
            f"((record, __import__('contextlib').nullcontext()) for records in "
            f"({batch}.values() if hasattr({batch}, 'values') else [{batch}]) "
            "for record in records)"
        )
        return updated_node.with_changes(iter=plain)

    def leave_SimpleStatementLine(self, original_node, updated_node):
        if self._is(Shape.STMT, START_CAPTURE) and self._at(original_node):
            self.done = True
            return updated_node.with_changes(body=[cst.Pass()])
        return updated_node

    def leave_IndentedBlock(self, original_node, updated_node):
        return self._detach_after_try(original_node, updated_node)

    def leave_Module(self, original_node, updated_node):
        return self._detach_after_try(original_node, updated_node)

    def _detach_after_try(self, original_node, updated_node):
        """``attach; try: ... finally: detach`` back to ``attach; ...; detach`` (no finally)."""
        if self._token is None or self.done:
            return updated_node
        originals, statements = list(original_node.body), list(updated_node.body)
        for index, statement in enumerate(originals):
            if not isinstance(statement, cst.Try) or statement.finalbody is None:
                continue
            attach_before = any(self._at(s) for s in originals[:index])
            attach_inside = any(self._at(s) for s in statement.body.body)
            if not (attach_before or attach_inside):
                continue
            updated_try = statements[index]
            final = list(updated_try.finalbody.body.body)
            detach = next((s for s in final if _code(s).strip().endswith(f"({self._token})")
                           and "detach" in _code(s)), None)
            if detach is None:
                continue
            final.remove(detach)
            if final:
                kept = [updated_try.with_changes(
                    finalbody=updated_try.finalbody.with_changes(
                        body=updated_try.finalbody.body.with_changes(body=final)))]
            elif updated_try.handlers:
                kept = [updated_try.with_changes(finalbody=None)]
            else:
                kept = list(updated_try.body.body)
            self.done = True
            statements[index:index + 1] = [*kept, detach]
            return updated_node.with_changes(body=statements)
        return updated_node


def revert_site(source: str, site: Site) -> str:
    """``source`` with ``site`` put back in its un-instrumented form."""
    wrapper = MetadataWrapper(cst.parse_module(source))
    revert = _Revert(site)
    reverted = wrapper.visit(revert)
    if not revert.done:
        raise NotReverted(f"{site.where}: no {site.form} node at column {site.column}")
    compile(reverted.code, site.path, "exec")
    return reverted.code


# -- running the generated tests --


@dataclass
class Verdict:
    case: Case
    status: str
    detail: str = ""  # the failing test (killed), or why it was not driven


@dataclass
class Report:
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def driven(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status != NOT_DRIVEN]

    @property
    def killed(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == KILLED]

    @property
    def survivors(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == SURVIVED]

    @property
    def kill_rate(self) -> float:
        return len(self.killed) / len(self.driven) if self.driven else 0.0

    def render(self) -> str:
        lines = []
        for verdict in self.verdicts:
            site = verdict.case.site
            lines.append(f"{verdict.status:>10}  {site.where}  {site.kind}  {site.code}")
            if verdict.detail:
                lines.append(f"{'':>12}{verdict.detail}")
        lines.append(
            f"kill rate: {len(self.killed)}/{len(self.driven)} driven sites "
            f"({self.kill_rate:.0%}); {len(self.verdicts) - len(self.driven)} sites not driven"
        )
        lines.append("survivors: " + (", ".join(
            f"{v.case.site.where} ({v.case.site.kind})" for v in self.survivors) or "none"))
        return "\n".join(lines)


def _pytest(repo: Path, tests: list[Path], *, python: str, stop_early: bool) -> dict[str, str]:
    """Outcome per test function name (passed, failed, skipped) of the given test files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory(prefix="scaffold-mutation-") as scratch:
        junit = Path(scratch) / "junit.xml"
        subprocess.run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
             *(["-x"] if stop_early else []), *map(str, tests)],
            cwd=repo, env=env, capture_output=True, text=True, timeout=900,
        )
        if not junit.exists():
            return {}
        outcomes: dict[str, str] = {}
        for testcase in ElementTree.parse(junit).iter("testcase"):
            outcome = "passed"
            for child in testcase:
                if child.tag in ("failure", "error"):
                    outcome = "failed"
                elif child.tag == "skipped":
                    outcome = "skipped"
            outcomes[testcase.get("name", "")] = outcome
        return outcomes


def mutate(repo: Path, *, python: str = sys.executable) -> Report:
    """Revert each site of an instrumented ``repo`` in turn and run its generated tests."""
    modules = find_sites(repo).modules
    tests_dir = next(iter(repo.glob("**/" + CONTRACT)), None)
    if tests_dir is None:
        raise SystemExit(f"scaffold.mutation: no generated tracing tests under {repo}")
    tests = sorted(tests_dir.parent.glob(f"{MODULE_PREFIX}*.py"))
    baseline = _pytest(repo, tests, python=python, stop_early=False)
    report = Report()
    for module in modules:
        for case in module.cases:
            outcomes = [baseline.get(name, "missing") for name in case.test_names]
            if case.skip is not None:
                report.verdicts.append(Verdict(case, NOT_DRIVEN, f"generated skipped: {case.skip}"))
                continue
            if any(outcome != "passed" for outcome in outcomes):
                report.verdicts.append(Verdict(
                    case, NOT_DRIVEN, "its tests did not pass before the change: "
                    + ", ".join(f"{n} {o}" for n, o in zip(case.test_names, outcomes,
                                                              strict=True))))
                continue
            report.verdicts.append(_mutant(repo, case, tests, python))
    return report


def _mutant(repo: Path, case: Case, tests: list[Path], python: str) -> Verdict:
    path = repo / case.site.path
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(revert_site(original, case.site), encoding="utf-8")
        outcomes = _pytest(repo, tests, python=python, stop_early=True)
    except NotReverted as exc:
        return Verdict(case, SURVIVED, f"could not revert: {exc}")
    finally:
        path.write_text(original, encoding="utf-8")
    failed = sorted(name for name, outcome in outcomes.items() if outcome == "failed")
    if failed:
        return Verdict(case, KILLED, f"failed: {', '.join(failed)}")
    return Verdict(case, SURVIVED, "every generated test still passes without this site")


def retrofit_copy(source: Path, dest: Path) -> Path:
    """A copy of ``source`` at ``dest``, retrofitted (which writes its tracing tests)."""
    from scaffold.cli import main as scaffold_main

    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(
        "__pycache__", ".pytest_cache", ".git", ".venv"))
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = scaffold_main(["retrofit", "--jobs", "1", str(dest)])
    if code == 2:  # some file could not be processed: the rest is retrofitted, say which
        errors = [line for line in output.getvalue().splitlines() if ": error: " in line]
        print("scaffold.mutation: retrofit left files alone:\n  " + "\n  ".join(errors),
              file=sys.stderr)
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaffold.mutation", description=__doc__
                                     .splitlines()[0])
    parser.add_argument("path", type=Path, help="the repository to retrofit and mutate")
    parser.add_argument("--retrofitted", action="store_true",
                        help="PATH is already retrofitted with its tests: mutate a copy as is")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scaffold-mutation-") as scratch:
        copy = Path(scratch) / args.path.resolve().name
        if args.retrofitted:
            shutil.copytree(args.path, copy, ignore=shutil.ignore_patterns(
                "__pycache__", ".pytest_cache"))
        else:
            retrofit_copy(args.path, copy)
        report = mutate(copy)
    print(report.render())
    return 0 if report.driven and not report.survivors else 1


if __name__ == "__main__":
    sys.exit(main())
