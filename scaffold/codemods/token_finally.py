"""A context ``attach(...)`` whose ``detach(...)`` is not guaranteed by a ``finally``.

What it does: finds ``token = context.attach(ctx)`` (``opentelemetry.context.attach`` under any
import or module-level alias) whose ``context.detach(token)`` later in the same block is not in
a ``finally``, and wraps the statements between them in ``try: ... finally: detach(token)``.
Several attaches detach in reverse order of attach: tokens detached out of order are nested
so the last attached is detached first, and a ``finally`` that detaches them in the wrong order
is reordered. Sites it cannot fix are reported, not rewritten: an attach whose token is stored
away or detached in another function (``before_request``/``after_request`` hooks), an attach
whose token is discarded, and a detach in a different block than its attach. Left alone
silently: an attach in ``__enter__``/``__aenter__`` whose token the same class's
``__exit__``/``__aexit__`` detaches (``self._token``, a local stored there, or a stack pushed
and popped), since the ``with`` statement guarantees that pair.

Why: ``context.detach`` never raises. If the code between attach and detach raises or is
cancelled, the detach is skipped and the attached context stays current for whatever runs
next on that thread or task: later spans join the wrong trace. Detaching out of order in the
same context logs nothing and silently leaves a stale context current.

Example::

    token = context.attach(ctx)
    handle(message)
    context.detach(token)

Use instead::

    token = context.attach(ctx)
    try:
        handle(message)
    finally:
        context.detach(token)

Fix safety: safe. The statements between attach and detach run exactly as before; only the
exception and early-return paths change, and on those the detach now happens, which is the
point. Comments stay with the statements they precede.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import cast

import libcst as cst
from libcst.metadata import QualifiedNameProvider

from scaffold.codemods.base import Codemod, dotted_name
from scaffold.engine.fast import FastVisitor
from scaffold.engine.gates import SyntaxGate
from scaffold.kit_api import KIT_PACKAGE

ATTACH = "opentelemetry.context.attach"
DETACH = "opentelemetry.context.detach"
ENTERS = ("__enter__", "__aenter__")
EXITS = ("__exit__", "__aexit__")

_Pair = tuple[cst.BaseStatement, cst.BaseStatement]  # (updated, original)


@dataclass(frozen=True)
class _Attach:
    form: str  # "name": token = attach(); "stored": self.x = attach(); "bare": attach()
    call: cst.Call
    token: str | None = None
    target: str | None = None


@dataclass
class _Scope:
    """What one function (or the module's top level) does with attach and detach."""

    order: dict[str, int] = field(default_factory=dict)  # token -> position of its attach
    detached: set[str] = field(default_factory=set)
    sites: list[tuple[cst.Call, _Attach | None]] = field(default_factory=list)


class TokenFinally(Codemod):
    PREFILTER = ("attach",)
    SITE_KIND = "context-token"  # its rows in `scaffold report`
    SLICE_WORDS = frozenset({"detach"})  # detaches are reordered, exits read
    GATE = SyntaxGate(names={ATTACH})  # detaches are only reordered after their attaches
    METADATA_DEPENDENCIES = (QualifiedNameProvider,)

    @classmethod
    def wants(cls, source: str) -> bool:
        # an attach this codemod can resolve always comes with an opentelemetry import
        return "attach" in source and "opentelemetry" in source

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._aliases: dict[str, str] = {}
        self._scopes: list[_Scope] = []
        self._all_scopes: list[_Scope] = []
        self._guaranteed: set[cst.Call] = set()
        self._settled: set[cst.Call] = set()  # rewritten or silenced: nothing to report
        # __enter__/__aenter__ -> what its class's __exit__/__aexit__ detaches
        self._entered: dict[cst.FunctionDef, _ExitDetaches] = {}

    # -- recognising attach and detach --

    def _callee(self, call: cst.CSTNode) -> str | None:
        if not isinstance(call, cst.Call):
            return None
        if isinstance(call.func, cst.Name) and call.func.value in self._aliases:
            return self._aliases[call.func.value]
        for wanted in (ATTACH, DETACH):
            if self.refers_to(call.func, {wanted}):
                return wanted
        return None

    def _attach_of(self, statement: cst.CSTNode) -> _Attach | None:
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return None
        small = statement.body[0]
        if isinstance(small, cst.Expr) and self._callee(small.value) == ATTACH:
            return _Attach("bare", cast(cst.Call, small.value))
        targets: Sequence[cst.BaseAssignTargetExpression] = ()
        value: cst.BaseExpression | None = None
        if isinstance(small, cst.Assign):
            targets, value = [target.target for target in small.targets], small.value
        elif isinstance(small, cst.AnnAssign) and small.value is not None:
            targets, value = [small.target], small.value
        if not targets or value is None or self._callee(value) != ATTACH:
            return None
        call = cast(cst.Call, value)
        if len(targets) == 1 and isinstance(targets[0], cst.Name):
            return _Attach("name", call, token=targets[0].value)
        return _Attach("stored", call, target=dotted_name(targets[0]) or "an expression")

    def _detached_token(self, statement: cst.CSTNode) -> str | None:
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return None
        small = statement.body[0]
        if not isinstance(small, cst.Expr) or self._callee(small.value) != DETACH:
            return None
        args = cast(cst.Call, small.value).args
        if len(args) == 1 and isinstance(args[0].value, cst.Name):
            return args[0].value.value
        return None

    def _finally_detaches(self, finally_: cst.Finally) -> set[str]:
        """The tokens a finally detaches: ``detach(token)``, also under ``if token:`` or
        ``if token is not None:`` (the guard of ``token = None; try: token = attach()``)."""
        tokens = set()
        for statement in finally_.body.body:
            token = self._detached_token(statement)
            if token is None and isinstance(statement, cst.If) and statement.orelse is None:
                guarded = _guarded_name(statement.test)
                body = statement.body.body if isinstance(statement.body, cst.IndentedBlock) \
                    else ()
                detached = {self._detached_token(inner) for inner in body}
                if guarded is not None and detached == {guarded}:
                    token = guarded
            if token is not None:
                tokens.add(token)
        return tokens

    # -- gathering, on the original tree --

    def visit_Module(self, node: cst.Module) -> bool:
        if KIT_PACKAGE in PurePath(self.path).parts[:-1]:
            return False  # the kit's own helpers are the reference; never rewrite them
        for statement in node.body:  # module-level aliases: otel_attach = context.attach
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if (
                        isinstance(small, cst.Assign)
                        and len(small.targets) == 1
                        and isinstance(small.targets[0].target, cst.Name)
                    ):
                        for wanted in (ATTACH, DETACH):
                            if self.refers_to(small.value, {wanted}):
                                self._aliases[small.targets[0].target.value] = wanted
        self._mark_followed_by_finally(node.body)
        self._enter(node.body)
        return True

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        """A context manager attaching in __enter__ and detaching in __exit__ is guaranteed by
        the with statement: remember what its exit methods detach."""
        methods = [statement for statement in getattr(node.body, "body", ())
                   if isinstance(statement, cst.FunctionDef)]
        detaches = _ExitDetaches(self)
        for method in methods:
            if method.name.value in EXITS:
                method.visit(detaches)
        if detaches.tokens or detaches.stacks:
            for method in methods:
                if method.name.value in ENTERS:
                    self._entered[method] = detaches

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._enter([node.body], self._entered.get(node))

    def _enter(self, body: Sequence[cst.CSTNode], exits: _ExitDetaches | None = None) -> None:
        scope = _Scope()
        codemod = self
        kept: dict[str, cst.Call] = {}  # in __enter__: token -> its attach, until stored on self

        class _Scan(FastVisitor):
            def visit_FunctionDef(self, _: cst.FunctionDef) -> bool:
                return False

            def visit_Lambda(self, _: cst.Lambda) -> bool:
                return False

            def visit_SimpleStatementLine(self, statement: cst.SimpleStatementLine) -> None:
                found = codemod._attach_of(statement)
                if exits is not None:
                    exits.settle(statement, found, kept)
                if found is not None:
                    scope.sites.append((found.call, found))
                    if found.token is not None:
                        scope.order.setdefault(found.token, len(scope.order))

            def visit_Call(self, call: cst.Call) -> None:
                kind = codemod._callee(call)
                if kind == DETACH:
                    scope.detached.update(
                        arg.value.value for arg in call.args if isinstance(arg.value, cst.Name)
                    )
                elif kind == ATTACH and all(site[0] is not call for site in scope.sites):
                    scope.sites.append((call, None))  # inside an expression

        for node in body:
            node.visit(_Scan())
        self._scopes.append(scope)
        self._all_scopes.append(scope)

    def visit_Try(self, node: cst.Try) -> None:
        """Attaches inside a try whose finally detaches their token are already right."""
        if node.finalbody is None:
            return
        detached = self._finally_detaches(node.finalbody)
        codemod = self

        class _Scan(FastVisitor):
            def visit_FunctionDef(self, _: cst.FunctionDef) -> bool:
                return False

            def visit_SimpleStatementLine(self, statement: cst.SimpleStatementLine) -> None:
                found = codemod._attach_of(statement)
                if found is not None and found.token in detached:
                    codemod._guaranteed.add(found.call)
                    codemod.record_correct(found.call, "a finally detaches its token")

        node.body.visit(_Scan())

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._mark_followed_by_finally(node.body)

    def _mark_followed_by_finally(self, body: Sequence[cst.BaseStatement]) -> None:
        """``token = attach(); try: ... finally: detach(token)`` (a run of attaches allowed)."""
        for index, statement in enumerate(body):
            found = self._attach_of(statement)
            if found is None or found.token is None:
                continue
            after = index + 1
            while after < len(body) and self._attach_of(body[after]) is not None:
                after += 1
            following = body[after] if after < len(body) else None
            if isinstance(following, cst.Try) and following.finalbody is not None:
                if found.token in self._finally_detaches(following.finalbody):
                    self._guaranteed.add(found.call)
                    self.record_correct(found.call, "a finally detaches its token")

    # -- rewriting, bottom-up --

    def leave_FunctionDef(self, original_node, updated_node):
        self._scopes.pop()
        return updated_node

    def leave_IndentedBlock(self, original_node, updated_node):
        if len(original_node.body) != len(updated_node.body):
            return updated_node
        body, changed = self._wrap(list(zip(updated_node.body, original_node.body, strict=True)))
        return updated_node.with_changes(body=body) if changed else updated_node

    def leave_Finally(self, original_node, updated_node):
        """Detaches in a finally run in reverse order of their attaches."""
        order = self._scopes[-1].order if self._scopes else {}
        statements = list(updated_node.body.body)
        originals = list(original_node.body.body)
        if len(statements) != len(originals):
            return updated_node
        start, changed = 0, False
        while start < len(statements):
            end = start
            while end < len(statements) and self._detached_token(originals[end]) in order:
                end += 1
            if end - start > 1:
                run = list(zip(statements[start:end], originals[start:end], strict=True))
                wanted = sorted(run, key=lambda pair: -order[self._detached_token(pair[1])])
                if [p[1] for p in wanted] != [p[1] for p in run] and self.record_change(
                    originals[start],
                    "detaches reordered to run in reverse order of their attaches",
                ):
                    statements[start:end] = [_keep_leading(p[0], run[i][0])
                                             for i, p in enumerate(wanted)]
                    changed = True
            start = max(end, start + 1)
        if not changed:
            return updated_node
        return updated_node.with_changes(body=updated_node.body.with_changes(body=statements))

    def leave_Module(self, original_node, updated_node):
        if not self._scopes:  # visit_Module skipped the kit's own code
            return updated_node
        self._scopes.pop()
        body, changed = self._wrap(list(zip(updated_node.body, original_node.body, strict=True)))
        self._report_the_rest()
        return updated_node.with_changes(body=body) if changed else updated_node

    def _wrap(self, pairs: list[_Pair]) -> tuple[list[cst.BaseStatement], bool]:
        """Wrap each attach...detach stretch of one block in try/finally, innermost nested."""
        out: list[cst.BaseStatement] = []
        changed = False
        index = 0
        while index < len(pairs):
            updated, original = pairs[index]
            found = self._attach_of(original)
            token = found.token if found is not None else None
            if found is None or token is None or found.call in self._guaranteed:
                out.append(updated)
                index += 1
                continue
            detach = next(
                (j for j in range(index + 1, len(pairs))
                 if self._detached_token(pairs[j][1]) == token),
                None,
            )
            if detach is None:
                out.append(updated)
                index += 1
                continue
            first, last = detach, detach  # the run of detach statements around ours
            while first - 1 > index and self._detached_token(pairs[first - 1][1]) is not None:
                first -= 1
            while last + 1 < len(pairs) and self._detached_token(pairs[last + 1][1]) is not None:
                last += 1
            region = pairs[index + 1 : first]
            inner_tokens = {
                attach.token for _, o in region
                if (attach := self._attach_of(o)) is not None and attach.token is not None
            }
            detaches = pairs[first : last + 1]
            inner = [p for p in detaches if self._detached_token(p[1]) in inner_tokens]
            outer = [
                p for p in detaches
                if self._detached_token(p[1]) not in inner_tokens | {token}
            ]
            self._settled.add(found.call)
            if not self.record_change(
                original, f"detach({token}) moved into a finally so it runs on every path"
            ):
                out.append(updated)
                index += 1
                continue
            body, _ = self._wrap(region + inner)
            out.append(updated)
            out.append(_try_finally(body, pairs[detach][0]))
            out.extend(p[0] for p in outer)
            changed = True
            index = last + 1
        return out, changed

    def _report_the_rest(self) -> None:
        for scope in self._all_scopes:
            for call, found in scope.sites:
                if call in self._guaranteed or call in self._settled:
                    continue
                self.report(call, _reason(found, scope))


def _guarded_name(test: cst.BaseExpression) -> str | None:
    """``token`` for the test ``token`` or ``token is not None``."""
    if isinstance(test, cst.Name):
        return test.value
    if isinstance(test, cst.Comparison) and isinstance(test.left, cst.Name) \
            and len(test.comparisons) == 1:
        target = test.comparisons[0]
        if isinstance(target.operator, cst.IsNot) and isinstance(
                target.comparator, cst.Name) and target.comparator.value == "None":
            return test.left.value
    return None


def _reason(found: _Attach | None, scope: _Scope) -> str:
    if found is None:
        return ("attach() inside an expression: its token cannot be followed; assign it and "
                "detach it in a finally")
    if found.form == "bare":
        return "the token from attach() is discarded, so this context can never be detached"
    if found.form == "stored":
        return (f"the token is stored in {found.target}: detached in another function (request "
                "hooks?), no finally covers a failure in between")
    if found.token in scope.detached:
        return (f"detach({found.token}) is not in the same block as the attach; "
                "put it in a finally")
    return (f"{found.token} is not detached in this function (request hooks?): no finally "
            "covers a failure in between")


_Statement = cst.SimpleStatementLine | cst.BaseCompoundStatement  # both have leading_lines


def _strip_blank_leading(statement: cst.BaseStatement) -> cst.BaseStatement:
    lines = list(cast(_Statement, statement).leading_lines)
    while lines and lines[0].comment is None:
        lines.pop(0)
    return statement.with_changes(leading_lines=lines)


def _keep_leading(moved: cst.BaseStatement, slot: cst.BaseStatement) -> cst.BaseStatement:
    """``moved`` at ``slot``'s position keeps the blank lines that were there."""
    blank = [line for line in cast(_Statement, slot).leading_lines if line.comment is None]
    comments = [line for line in cast(_Statement, moved).leading_lines
                if line.comment is not None]
    return moved.with_changes(leading_lines=blank + comments)


def _try_finally(body: list[cst.BaseStatement], detach: cst.BaseStatement) -> cst.BaseStatement:
    detach = _strip_blank_leading(detach)
    finally_ = cst.Finally(body=cst.IndentedBlock(body=[detach]))
    if len(body) == 1 and isinstance(body[0], cst.Try) and body[0].finalbody is None:
        return body[0].with_changes(finalbody=finally_)
    statements = [_strip_blank_leading(body[0]), *body[1:]] if body else [
        cst.SimpleStatementLine([cst.Pass()])
    ]
    return cst.Try(body=cst.IndentedBlock(body=statements), finalbody=finally_)


class _ExitDetaches(FastVisitor):
    """What a context manager's __exit__/__aexit__ detaches: ``detach(self.<token>)`` and
    ``detach(self.<tokens>.pop())``; its __enter__/__aenter__ attaches there are guaranteed."""

    def __init__(self, codemod: TokenFinally) -> None:
        super().__init__()
        self.codemod = codemod
        self.tokens: set[str] = set()
        self.stacks: set[str] = set()

    def visit_Call(self, call: cst.Call) -> None:
        if self.codemod._callee(call) != DETACH or not call.args:
            return
        detached = call.args[0].value
        if isinstance(detached, cst.Call) and isinstance(detached.func, cst.Attribute) \
                and detached.func.attr.value == "pop" and not detached.args:
            stack = dotted_name(detached.func.value)
            if stack:
                self.stacks.add(stack)
        else:
            name = dotted_name(detached)
            if name:
                self.tokens.add(name)

    def settle(self, statement: cst.SimpleStatementLine, found: _Attach | None,
               kept: dict[str, cst.Call]) -> None:
        """Mark the attaches of one __enter__ statement that __exit__ detaches."""
        codemod = self.codemod
        if found is not None:
            if found.form == "stored" and found.target in self.tokens:
                codemod._guaranteed.add(found.call)
            elif found.form == "name" and found.token is not None:
                kept[found.token] = found.call  # guaranteed once stored where __exit__ looks
            return
        if len(statement.body) != 1:
            return
        small = statement.body[0]
        if isinstance(small, cst.Assign) and isinstance(small.value, cst.Name) \
                and small.value.value in kept and any(
                    dotted_name(target.target) in self.tokens for target in small.targets):
            codemod._guaranteed.add(kept[small.value.value])  # token = attach(); self.t = token
        elif isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            push = small.value  # self.tokens.append(attach(ctx))
            if isinstance(push.func, cst.Attribute) and push.func.attr.value == "append" \
                    and dotted_name(push.func.value) in self.stacks and len(push.args) == 1 \
                    and codemod._callee(push.args[0].value) == ATTACH:
                codemod._guaranteed.add(cast(cst.Call, push.args[0].value))
