"""A fire-and-forget task is started under a span it outlives.

What it does: reports ``asyncio.create_task(...)``, ``loop.create_task(...)`` and
``ensure_future(...)`` calls made under a span (inside ``with``/``async with`` of
``start_as_current_span``, ``start_span``, ``use_span``, ``trace_operation``, ``restore_span``,
``consume_span``, ``use_trace_context``, ``attached`` or ``restore_from_queue``) or in a request
handler (a function decorated with ``route``, ``get``, ``post``, ``put``, ``patch``, ``delete``,
``websocket``, ``api_route`` or ``start_as_current_span``) whose task is not awaited in the
same function: neither awaited directly nor through a name or collection that an ``await``
reads. Tasks given an explicit ``context=`` and tasks of an ``asyncio.TaskGroup`` (which waits
for them) are fine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ParentNodeProvider

from scaffold.checks._syntax import call_name, dotted_name, keyword, names_read, terminal_name
from scaffold.checks.base import Check

_TASK_CALLS = frozenset({"create_task", "ensure_future"})
_SPAN_CONTEXT_MANAGERS = frozenset(
    {"start_as_current_span", "start_span", "use_span", "trace_operation", "restore_span",
     "consume_span", "use_trace_context", "attached", "restore_from_queue"}
)
_HANDLER_DECORATORS = frozenset(
    {"route", "get", "post", "put", "patch", "delete", "websocket", "api_route",
     "start_as_current_span"}
)


@dataclass
class _Frame:
    """What encloses the code being visited inside one function."""

    function: cst.FunctionDef | None
    handler: bool = False
    spans: list[str] = field(default_factory=list)  # innermost last
    task_groups: set[str] = field(default_factory=set)


class TaskOutlivesSpan(Check):
    WHY = (
        "asyncio copies the current context into a new task, so the task's spans become "
        "children of the span that was current when it started. A fire-and-forget task keeps "
        "working after that span (often the request span) has ended: its children start after "
        "their parent ended, the request looks slower or faster than it was, and a backend "
        "that drops orphaned late children loses the work altogether."
    )
    FIX_HINT = (
        "Await the task inside the span, or start it detached from the request: "
        "`asyncio.create_task(work(), context=contextvars.Context())` with a new root span "
        "inside the task that links to the request (`links=[Link(span.get_span_context())]`)."
    )
    METADATA_DEPENDENCIES = (ParentNodeProvider,)
    PREFILTER = ("create_task", "ensure_future")
    VALID = (
        """
        import asyncio, contextvars

        @app.before_serving
        async def start_consumers():
            app.consumer_task = asyncio.create_task(consume_forever())

        async def handle(message):
            with tracer.start_as_current_span("process"):
                task = asyncio.create_task(enrich(message))
                await task

        @router.post("/orders")
        async def create_order(order):
            jobs = [asyncio.create_task(reserve(item)) for item in order.items]
            await asyncio.gather(*jobs)
            async with asyncio.TaskGroup() as group:
                group.create_task(notify(order))
            asyncio.create_task(audit(order), context=contextvars.Context())
        """,
    )
    INVALID = (
        """
        import asyncio

        background = set()

        @app.route("/orders", methods=["POST"])
        async def create_order():
            asyncio.create_task(send_receipt())  # <-
            return "ok"

        async def handle(envelope):
            with trace_operation(tracer, envelope.event_type):
                task = asyncio.get_running_loop().create_task(reindex(envelope))  # <-
                background.add(task)
                task.add_done_callback(background.discard)
        """,
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._frames = [_Frame(function=None)]
        self._span_withs: set[int] = set()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        handler = any(
            terminal_name(d.decorator.func if isinstance(d.decorator, cst.Call) else d.decorator)
            in _HANDLER_DECORATORS
            for d in node.decorators
        )
        spans = [f"request handler `{node.name.value}`"] if handler else []
        self._frames.append(_Frame(function=node, handler=handler, spans=spans))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._frames.pop()

    def visit_With(self, node: cst.With) -> None:
        frame = self._frames[-1]
        for item in node.items:
            name = call_name(item.item)
            if name in _SPAN_CONTEXT_MANAGERS:
                frame.spans.append(f"`{name}(...)`")
                self._span_withs.add(id(node))
                break
            if name == "TaskGroup" and item.asname and isinstance(item.asname.name, cst.Name):
                frame.task_groups.add(item.asname.name.value)

    def leave_With(self, original_node: cst.With) -> None:
        if id(original_node) in self._span_withs:
            self._span_withs.discard(id(original_node))
            self._frames[-1].spans.pop()

    def visit_Call(self, node: cst.Call) -> None:
        frame = self._frames[-1]
        if call_name(node) not in _TASK_CALLS or not frame.spans or frame.function is None:
            return
        if keyword(node, "context") is not None:
            return
        receiver = node.func.value if isinstance(node.func, cst.Attribute) else None
        if receiver is not None and dotted_name(receiver) in frame.task_groups:
            return
        if self._fire_and_forget(node, frame.function):
            self.report(
                node,
                f"task started under the span of {frame.spans[-1]} keeps running after that "
                "span ends",
            )

    def _fire_and_forget(self, call: cst.Call, function: cst.FunctionDef) -> bool:
        parent = self.get_metadata(ParentNodeProvider, call)
        if isinstance(parent, (cst.Await, cst.Return)):
            return False
        holder: str | None = None
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
            holder = dotted_name(parent.targets[0].target)
        elif isinstance(parent, cst.Arg):
            receiving_call = self.get_metadata(ParentNodeProvider, parent)
            if call_name(receiving_call) in {"gather", "wait", "wait_for", "shield"}:
                return False
            if (
                isinstance(receiving_call, cst.Call)
                and isinstance(receiving_call.func, cst.Attribute)
                and receiving_call.func.attr.value in {"append", "add"}
            ):
                holder = dotted_name(receiving_call.func.value)
        elif isinstance(parent, (cst.Element, cst.ListComp)):
            holder = self._comprehension_holder(parent)
        if holder is None:
            return not isinstance(parent, cst.Arg)  # handed to other code: its business
        awaited = set().union(*(names_read(a) for a in m.findall(function, m.Await())))
        return holder not in awaited

    def _comprehension_holder(self, node: cst.CSTNode) -> str | None:
        """The name a list of tasks is assigned to (``jobs = [create_task(...) ...]``)."""
        current: cst.CSTNode | None = node
        while current is not None and not isinstance(current, cst.Assign):
            if isinstance(current, cst.BaseStatement):
                return None
            current = self.get_metadata(ParentNodeProvider, current, None)
        if current is None or len(current.targets) != 1:
            return None
        return dotted_name(current.targets[0].target)
