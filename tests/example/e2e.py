"""End-to-end run of one essay through the example service, over a real broker and Redis.

``run_flow(service_dir, ...)`` drives the whole service: an HTTP request through the Quart
test client (with its lifespan, so ``before_serving`` starts the Kafka consumers), the Redis
queue and the worker, Kafka, the consumer loop and its handler, the thread pools, the outbox
relay, Kafka again and the ``getmany`` projection. A content service (a real aiohttp server on
loopback) answers the service's outgoing HTTP call. Every span goes to an in-memory exporter;
the result says which hop's spans share which trace and parent.

The flow runs in a child process (this file is its entry point) because each service copy is
the same package, ``legacy_service``, and because the global tracer provider can be set only
once per process: the child installs its provider before the service is imported, so the
service's own set-up (at import or at start-up) is refused or adopts it.

``broken_hops(spans)`` lists the hops whose trace is broken; ``assert_unbroken(spans)`` fails
unless there are none: one trace from the client's request to both consumers of the downstream
event, every hop under the hop that caused it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE = "legacy_service"
SUBMITTED = "huleedu.essay.submitted.v1"
ANALYSED = "huleedu.essay.analysed.v1"
CLIENT = "e2e.client"
CONTENT_SERVICE = "content_service.receive"
DOWNSTREAM = "e2e.downstream_event"
WHOLE_FLOW = "whole flow"
DESTINATION = "messaging.destination.name"


# --- the parent's view of a run ----------------------------------------------------------------


@dataclass(frozen=True)
class SpanRecord:
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str | None
    attributes: dict[str, Any]

    def describe(self) -> str:
        origin = f"parent={self.parent_id}" if self.parent_id else "root"
        return f"{self.name} [{self.kind}] trace={self.trace_id} span={self.span_id} {origin}"


class Spans(Sequence[SpanRecord]):
    """The spans of one run, with the lookups the assertions need."""

    def __init__(self, records: Sequence[SpanRecord]) -> None:
        self._records = list(records)
        self._by_id = {record.span_id: record for record in self._records}

    def __getitem__(self, index):  # type: ignore[override]
        return self._records[index]

    def __len__(self) -> int:
        return len(self._records)

    def named(self, name: str) -> list[SpanRecord]:
        return [record for record in self._records if record.name == name]

    def one(self, name: str) -> SpanRecord:
        found = self.named(name)
        assert len(found) == 1, f"expected one span {name!r}, found {len(found)}\n{self.tree()}"
        return found[0]

    def ancestors(self, record: SpanRecord) -> Iterator[SpanRecord]:
        parent_id = record.parent_id
        while parent_id is not None and parent_id in self._by_id:
            parent = self._by_id[parent_id]
            yield parent
            parent_id = parent.parent_id

    def descends_from(self, record: SpanRecord, ancestor: SpanRecord) -> bool:
        return any(parent.span_id == ancestor.span_id for parent in self.ancestors(record))

    def trace_ids(self) -> set[str]:
        return {record.trace_id for record in self._records}

    def tree(self) -> str:
        """Every trace as an indented tree, for failure messages."""
        children: dict[str | None, list[SpanRecord]] = {}
        for record in self._records:
            parent = record.parent_id if record.parent_id in self._by_id else None
            children.setdefault(parent, []).append(record)
        lines: list[str] = []

        def emit(record: SpanRecord, depth: int) -> None:
            lines.append("  " * depth + record.describe())
            for child in children.get(record.span_id, ()):
                emit(child, depth + 1)

        for root in children.get(None, ()):
            emit(root, 0)
        return "\n".join(lines) or "(no spans)"


@dataclass(frozen=True)
class Flow:
    """What one run produced, beside its spans."""

    spans: Spans
    response_status: int
    essay: dict[str, str]
    course_stats: dict[str, Any]
    content_service_headers: dict[str, str]
    downstream_envelope: dict[str, Any]
    topics: dict[str, str]


@dataclass(frozen=True)
class Hop:
    """One step of the flow: the spans that stand for it and the hop that must be above them."""

    label: str
    matches: Callable[[SpanRecord], bool]
    under: str | None


def _named(name: str) -> Callable[[SpanRecord], bool]:
    return lambda record: record.name == name


def _messaging(kind: str, event_type: str) -> Callable[[SpanRecord], bool]:
    # topics are the event type behind a per-run prefix
    return lambda record: (
        record.kind == kind and str(record.attributes.get(DESTINATION, "")).endswith(event_type)
    )


# In flow order; each hop's spans must descend from a span of the hop named in ``under``.
HOPS: tuple[Hop, ...] = (
    Hop(CLIENT, _named(CLIENT), None),
    Hop("api.submit_essay", _named("api.submit_essay"), CLIENT),
    Hop(CONTENT_SERVICE, _named(CONTENT_SERVICE), "api.submit_essay"),
    Hop("queue_processing", _named("queue_processing"), "api.submit_essay"),
    Hop("essay.normalise_text", _named("essay.normalise_text"), "queue_processing"),
    Hop(f"send {SUBMITTED}", _messaging("PRODUCER", SUBMITTED), "queue_processing"),
    Hop(f"process {SUBMITTED}", _messaging("CONSUMER", SUBMITTED), "queue_processing"),
    Hop(SUBMITTED, _named(SUBMITTED), "queue_processing"),
    Hop("essay.analyse_text", _named("essay.analyse_text"), SUBMITTED),
    Hop(f"send {ANALYSED}", _messaging("PRODUCER", ANALYSED), SUBMITTED),
    Hop(DOWNSTREAM, _named(DOWNSTREAM), SUBMITTED),
    Hop(f"process {ANALYSED}", _messaging("CONSUMER", ANALYSED), SUBMITTED),
    Hop(ANALYSED, _named(ANALYSED), SUBMITTED),
)

MISSING = "missing"
OTHER_TRACE = "in another trace"
NOT_UNDER = "in the trace but not under its cause"
CAUSE_BROKEN = "its cause is missing"


def broken_hops(spans: Spans) -> dict[str, str]:
    """``{hop label: why}`` for every hop whose trace is broken (empty when unbroken)."""
    broken: dict[str, str] = {}
    clients = spans.named(CLIENT)
    if len(clients) != 1:
        return {CLIENT: MISSING}
    client = clients[0]
    matched = {hop.label: [r for r in spans if hop.matches(r)] for hop in HOPS}
    for hop in HOPS[1:]:
        records = matched[hop.label]
        causes = matched[hop.under] if hop.under else []
        if not records:
            broken[hop.label] = MISSING
        elif any(record.trace_id != client.trace_id for record in records):
            broken[hop.label] = OTHER_TRACE
        elif not causes:
            broken[hop.label] = CAUSE_BROKEN
        elif not all(any(spans.descends_from(r, cause) for cause in causes) for r in records):
            broken[hop.label] = NOT_UNDER
    strays = [r for r in spans if r.trace_id != client.trace_id]
    orphans = [r for r in spans if r.parent_id and not any(spans.ancestors(r))]
    if strays or orphans:
        broken[WHOLE_FLOW] = (
            f"{len(strays)} spans outside the client's trace, {len(orphans)} with a parent that "
            f"was never recorded"
        )
    return broken


def assert_unbroken(spans: Spans) -> None:
    """Fail unless every hop is in the client's one trace, under the hop that caused it."""
    broken = broken_hops(spans)
    assert not broken, (
        "the trace is broken at: "
        + "; ".join(f"{label} ({why})" for label, why in broken.items())
        + "\n\n"
        + spans.tree()
    )


def run_flow(
    service_dir: Path, *, kafka_bootstrap: str, redis_url: str, timeout: float = 180.0
) -> Flow:
    """Run one essay through the service in ``service_dir`` (a copy of the example)."""
    service_dir = Path(service_dir).resolve()
    out = Path(tempfile.gettempdir()) / f"e2e-flow-{uuid.uuid4().hex}.json"
    # OTEL_* settings of the caller (a sampler, a disabled SDK) must not change what is recorded
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(PYTHONPATH=str(service_dir), PYTHONDONTWRITEBYTECODE="1")
    argv = [
        sys.executable,
        __file__,
        "--service-dir",
        str(service_dir),
        "--out",
        str(out),
        "--kafka-bootstrap",
        kafka_bootstrap,
        "--redis-url",
        redis_url,
        "--timeout",
        str(timeout),
    ]
    try:
        done = subprocess.run(
            argv, cwd=service_dir, env=env, capture_output=True, text=True, timeout=timeout + 60
        )
        if done.returncode != 0:
            raise AssertionError(
                f"the flow failed (exit {done.returncode})\n--- stdout\n{done.stdout}"
                f"\n--- stderr\n{done.stderr}"
            )
        result = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    return Flow(
        spans=Spans([SpanRecord(**record) for record in result.pop("spans")]),
        **result,
    )


# --- the child: one run, in this process ------------------------------------------------------


def _child_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--service-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kafka-bootstrap", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args))
    args.out.write_text(json.dumps(result))


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    # third-party imports stay here: the parent only reads results
    from aiohttp import web
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    from quart.testing.app import TestApp

    class KeepOpenExporter(InMemorySpanExporter):
        """Ignores shutdown: a service flushing the global provider must not drop our spans."""

        def shutdown(self) -> None:
            pass

    exporter = KeepOpenExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracer = provider.get_tracer("e2e")
    w3c = TraceContextTextMapPropagator()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout
    # The content service: answers the service's outgoing call, continuing whatever it was sent.
    content_headers: list[dict[str, str]] = []

    async def store_content(request: web.Request) -> web.Response:
        headers = {key.lower(): value for key, value in request.headers.items()}
        content_headers.append(headers)
        with tracer.start_as_current_span(
            CONTENT_SERVICE, context=w3c.extract(headers), kind=SpanKind.SERVER
        ):
            await request.json()
        return web.json_response({"content_id": f"content-{len(content_headers)}"}, status=201)

    content_app = web.Application()
    content_app.router.add_post("/v1/content", store_content)
    content_runner = web.AppRunner(content_app)
    await content_runner.setup()
    await web.TCPSite(content_runner, "127.0.0.1", 0).start()
    content_port = content_runner.addresses[0][1]

    run_id = uuid.uuid4().hex[:10]
    topic_prefix = f"e2e-{run_id}."
    os.environ.update(
        KAFKA_BOOTSTRAP_SERVERS=args.kafka_bootstrap,
        KAFKA_CONSUMER_GROUP=f"e2e-{run_id}",
        KAFKA_TOPIC_PREFIX=topic_prefix,
        REDIS_URL=args.redis_url,
        REDIS_KEY_PREFIX=f"e2e-{run_id}:",
        CONTENT_SERVICE_URL=f"http://127.0.0.1:{content_port}",
    )
    topics = {SUBMITTED: topic_prefix + SUBMITTED, ANALYSED: topic_prefix + ANALYSED}
    admin = AIOKafkaAdminClient(bootstrap_servers=args.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1) for topic in topics.values()])
    finally:
        await admin.close()

    # Imported only now, with our provider installed and the settings in the environment.
    app_module = importlib.import_module(f"{PACKAGE}.app")
    worker_module = importlib.import_module(f"{PACKAGE}.worker")
    config_module = importlib.import_module(f"{PACKAGE}.config")
    loaded_from = Path(app_module.__file__).resolve()
    if not loaded_from.is_relative_to(args.service_dir.resolve()):
        raise RuntimeError(f"{PACKAGE} was imported from {loaded_from}, not {args.service_dir}")

    observer = AIOKafkaConsumer(
        topics[ANALYSED],
        bootstrap_servers=args.kafka_bootstrap,
        group_id=f"e2e-{run_id}-observer",
        auto_offset_reset="earliest",
    )
    await observer.start()
    app = app_module.create_app()
    lifespan = TestApp(app, startup_timeout=60, shutdown_timeout=60)
    await lifespan.startup()
    stop = asyncio.Event()
    worker = asyncio.create_task(worker_module.serve(config_module.Settings.from_env(), stop))

    def remaining() -> float:
        """Seconds left to wait; fails at once when the worker has died."""
        if worker.done():
            raise RuntimeError(f"the worker stopped early: {worker.exception()!r}")
        left = deadline - loop.time()
        if left <= 0:
            raise TimeoutError("the flow did not finish in time")
        return left

    client = app.test_client()
    course_code = f"BIO-{run_id}"
    try:
        with tracer.start_as_current_span(CLIENT, kind=SpanKind.CLIENT):
            headers = {"X-Correlation-ID": f"corr-{run_id}"}
            w3c.inject(headers)
            response = await client.post(
                "/v1/essays",
                json={
                    "student_id": "student-1",
                    "course_code": course_code,
                    "text": "Plants convert light into sugar.  Photosynthesis feeds the world!",
                },
                headers=headers,
            )
            body = await response.get_json()
            if response.status_code != 202:
                raise RuntimeError(f"submission answered {response.status_code}: {body}")
            essay_id = body["essay_id"]
            downstream = await _downstream_event(observer, essay_id, remaining)
            course_stats = await _poll_json(
                client,
                f"/v1/courses/{course_code}/stats",
                headers,
                lambda stats: stats["essays"] >= 1,
                remaining,
            )
            essay = await _poll_json(
                client,
                f"/v1/essays/{essay_id}",
                headers,
                lambda record: record.get("status") == "analysed",
                remaining,
            )
        # What a downstream consumer that restores the envelope's context would record.
        origin = w3c.extract(downstream.get("metadata") or {})
        tracer.start_span(DOWNSTREAM, context=origin, kind=SpanKind.CONSUMER).end()
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=60)
        await lifespan.shutdown()
        await observer.stop()
        await content_runner.cleanup()
    return {
        "spans": [_record(span) for span in exporter.get_finished_spans()],
        "response_status": response.status_code,
        "essay": essay,
        "course_stats": course_stats,
        "content_service_headers": content_headers[0] if content_headers else {},
        "downstream_envelope": downstream,
        "topics": topics,
    }


async def _downstream_event(observer, essay_id: str, remaining) -> dict[str, Any]:
    """The first event on the observed topic about ``essay_id``."""
    while True:
        batch = await asyncio.wait_for(observer.getmany(timeout_ms=500), remaining())
        for records in batch.values():
            for record in records:
                envelope = json.loads(record.value)
                if envelope["data"].get("essay_id") == essay_id:
                    return envelope


async def _poll_json(client, path: str, headers, done, remaining) -> dict[str, Any]:
    """GET ``path`` until ``done(body)``; the requests carry the client's trace context."""
    while True:
        remaining()
        response = await client.get(path, headers=headers)
        if response.status_code == 200:
            body = await response.get_json()
            if done(body):
                return body
        await asyncio.sleep(0.2)


def _record(span) -> dict[str, Any]:
    parent = span.parent
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent_id": format(parent.span_id, "016x") if parent is not None else None,
        "attributes": {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in (span.attributes or {}).items()
        },
    }


if __name__ == "__main__":
    _child_main(sys.argv[1:])
