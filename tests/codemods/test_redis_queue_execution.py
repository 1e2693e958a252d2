"""redis-queue's output, executed against a real ``redis-server``: the worker continues the trace.

Producer and worker code are rewritten by the codemod, then run: the producer pushes (or
publishes) an item under a span, the rewritten worker or listener pops (or receives) it in a
fresh context, as another process would, and the span its handling runs in must be a child of
the producer's span. The same code not rewritten is the control: its handling is in no trace of
the producer's. The pub/sub case runs HuleEdu's own ``RedisPubSub`` and websocket listener
(the fixtures' ``before.py``), retrofitted: what the listener forwards to a browser must carry
no trace context.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import types
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from opentelemetry import trace

from scaffold.codemods import codemods_by_id
from scaffold.engine import Settings, Status, process_source

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "redis-queue"
SETTINGS = Settings(kit="kitpkg.tracekit")

LIST_QUEUE = """\
import json

import redis.asyncio as aioredis


async def enqueue(redis: aioredis.Redis, queue: str, essay_id: int) -> None:
    await redis.rpush(queue, json.dumps({"essay_id": essay_id}))


async def work_one(redis: aioredis.Redis, queue: str, handle) -> None:
    item = await redis.blpop([queue], timeout=30)
    if item is None:
        return
    _, raw = item
    job = json.loads(raw)
    await handle(job)
"""


def _module(source: str, name: str, rewrite: bool, **names: object) -> types.ModuleType:
    """``source`` (rewritten by redis-queue when ``rewrite``) executed as a fresh module."""
    if rewrite:
        result = process_source(source.encode(), "service/app.py",
                                [codemods_by_id()["redis-queue"]], SETTINGS)
        assert result.status in (Status.CHANGED, Status.UNCHANGED), result
        source = result.updated or source
    module = types.ModuleType(name)
    module.__dict__.update(names)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


class _Seen:
    """What the handling saw: the span current while it ran."""

    def __init__(self) -> None:
        self.spans: list[trace.SpanContext] = []
        self.done = asyncio.Event()

    def record(self) -> None:
        self.spans.append(trace.get_current_span().get_span_context())
        self.done.set()


def _assert_continues(seen: _Seen, producer: trace.Span, finished, rewritten: bool,
                      render) -> None:
    (handled,) = seen.spans
    tree = render(finished)
    producer_context = producer.get_span_context()
    assert (handled.trace_id == producer_context.trace_id) is rewritten, tree
    if rewritten:
        (processing,) = [s for s in finished if s.name == "queue_processing"]
        assert processing.context.span_id == handled.span_id, tree
        assert processing.parent is not None, tree
        assert processing.parent.span_id == producer_context.span_id, tree
        assert processing.kind is trace.SpanKind.CONSUMER, tree
    else:
        assert not [s for s in finished if s.name == "queue_processing"], tree


@pytest.mark.slow
@pytest.mark.parametrize("rewritten", [True, False], ids=["rewritten", "control: as written"])
async def test_a_list_item_pushed_by_rewritten_code_is_handled_in_the_producers_trace(
    kit_package, span_exporter, redis_url, rewritten
):
    code = _module(LIST_QUEUE, f"list_queue_{rewritten}", rewritten)
    client = aioredis.from_url(redis_url)
    queue = f"redis-queue-codemod-{rewritten}"
    seen = _Seen()

    async def handle(job: dict) -> None:
        assert job["essay_id"] == 7  # the payload's own keys are all still there
        seen.record()

    try:
        with kit_package.get_tracer().start_as_current_span("api.submit") as producer:
            await code.enqueue(client, queue, 7)
        # the worker starts from an empty context, as a worker process does
        await asyncio.create_task(code.work_one(client, queue, handle),
                                  context=contextvars.Context())
    finally:
        await client.aclose()
    _assert_continues(seen, producer, span_exporter.get_finished_spans(), rewritten,
                      kit_package.testing.render_span_tree)


@pytest.mark.slow
async def test_a_notification_the_listener_forwards_to_browsers_carries_no_trace_context(
    kit_package, span_exporter, redis_url
):
    """HuleEdu's websocket listener forwards each pub/sub message to a browser as it is: after
    retrofit, what reaches the browser is the notification as published, without propagation
    keys (a capture into it would send the trace context to end users)."""
    rewritten = True
    pubsub_code = _module((FIXTURES / "huleedu_pubsub_notification" / "before.py").read_text(),
                          f"redis_pubsub_{rewritten}", rewritten,
                          logger=logging.getLogger("redis-pubsub"))
    listener_code = _module((FIXTURES / "huleedu_websocket_listener" / "before.py").read_text(),
                            f"message_listener_{rewritten}", rewritten,
                            logger=logging.getLogger("websocket.message_listener"))
    client = aioredis.from_url(redis_url)
    seen = _Seen()
    forwarded: list[str] = []

    class WebSocketManager:
        async def send_message_to_user(self, user_id: str, data: str) -> None:
            forwarded.append(data)
            seen.record()

    bus = pubsub_code.RedisPubSub(client, "tests")
    user = f"user-{rewritten}"
    listener = listener_code.RedisMessageListener(bus, WebSocketManager())
    task = asyncio.create_task(listener._redis_listener(user, None),
                               context=contextvars.Context())
    try:
        channel = bus.get_user_channel(user)
        for _ in range(3000):  # until the listener has subscribed (bounded, never timed)
            if (await client.pubsub_numsub(channel))[0][1] == 1:
                break
            await asyncio.sleep(0.01)
        with kit_package.get_tracer().start_as_current_span("batch.status"):
            receivers = await bus.publish_user_notification(user, "batch_status_update",
                                                            {"batch_id": "b1"})
        assert receivers == 1
        await seen.done.wait()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.aclose()
    assert '"event": "batch_status_update"' in forwarded[0]
    for key in ("traceparent", "tracestate", "correlation_id"):
        assert key not in forwarded[0], forwarded[0]
