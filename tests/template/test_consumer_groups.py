"""A generated worker scaled out in one consumer group loses nothing and keeps every trace.

Three instances of the worker run as real processes (``python -m feedback`` from the generated
project's own venv) in one group on a 6-partition topic, against the real Tansu broker, and
export their spans over OTLP/gRPC to a real receiver (the one the generated projects' tests
use). Events with known trace parents are sent in a stream; mid-stream one instance is
SIGKILLed and, once the survivors took its partitions over, a fourth joins: the group
rebalances twice while records are in flight. When every event's derived event has arrived,
the survivors are stopped by SIGTERM.

Then: every event has its derived event (distinct derived ids = events sent; duplicates, which
at-least-once delivery allows, are counted and printed), every derived event is in its
sender's trace, every exported CONSUMER span has its sender's span as parent, and every span a
survivor exported under one of its own spans has that parent exported too (nothing was left
unended at shutdown).

The numbers are configurable for local runs (``SCAFFOLD_SCALE_EVENTS``, ``_PARTITIONS``,
``_INSTANCES``, ``_PACE_S``, ``_TIMEOUT_S``); ``SCAFFOLD_SCALE_LOGS=1`` prints the workers'
own log lines (assignments, revocations) with ``-s``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID, uuid4, uuid5

import jinja2
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from scaffold.resources import template_root

from .conftest import project_env

pytestmark = pytest.mark.slow

ANSWER_SET = "worker-both-http"
PACKAGE = "feedback"
EVENTS = int(os.environ.get("SCAFFOLD_SCALE_EVENTS", "3000"))
PARTITIONS = int(os.environ.get("SCAFFOLD_SCALE_PARTITIONS", "6"))
INSTANCES = int(os.environ.get("SCAFFOLD_SCALE_INSTANCES", "3"))
# The stream comes in three thirds, in paced chunks: the victim is killed once this share of
# the derived events arrived; the second third is sent once it is dead, while the survivors take
# its partitions over; the newcomer starts after that, and the last third is sent once it has
# partitions. So records are in flight through both rebalances, whatever their timing.
KILL_AT = 0.2
CHUNK = 100
PACE_S = float(os.environ.get("SCAFFOLD_SCALE_PACE_S", "0.2"))
DERIVED_TYPE = "essay.submitted.summarised"
# Safety nets so a broken service fails instead of hanging: never measurements.
TIMEOUT_S = float(os.environ.get("SCAFFOLD_SCALE_TIMEOUT_S", "420"))
STOP_TIMEOUT_S = 60.0

RECEIVER_TEMPLATE = (
    "templates/service/tests/"
    "{% if otlp_protocol == 'grpc' %}otlp_grpc_receiver.py{% endif %}.jinja"
)


def _receiver_module() -> ModuleType:
    """The OTLP/gRPC receiver of the generated projects' tests, rendered from the template."""
    path = template_root() / RECEIVER_TEMPLATE
    source = jinja2.Template(path.read_text()).render()
    spec = importlib.util.spec_from_loader("scale_otlp_grpc_receiver", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


@dataclass(frozen=True)
class Sent:
    event_id: UUID
    correlation_id: UUID
    trace_id: str
    span_id: str


def _events(count: int) -> list[tuple[Sent, bytes]]:
    events = []
    for index in range(count):
        sent = Sent(uuid4(), uuid4(), secrets.token_hex(16), secrets.token_hex(8))
        value = json.dumps(
            {
                "event_id": str(sent.event_id),
                "event_type": "essay.submitted",
                "source_service": "scale_test",
                "correlation_id": str(sent.correlation_id),
                "data": {"n": index},
            }
        ).encode()
        events.append((sent, value))
    return events


class Worker:
    """One ``python -m feedback`` process, its output in a log file."""

    def __init__(self, project: Path, name: str, env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log_path = logs / f"{name}.log"
        env = {**env, "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={name}"}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(project / ".venv" / "bin" / "python"), "-m", PACKAGE],
                cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assignments(self) -> int:
        return self.log().count("partitions assigned")

    def has_partitions(self) -> bool:
        return self.assignments() > 0

    def stop(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self) -> int:
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@contextmanager
def _workers() -> Iterator[list[Worker]]:
    workers: list[Worker] = []
    try:
        yield workers
    finally:
        for worker in workers:  # only what this test started, by pid
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()


async def _wait_for(condition: Any, what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _send_stream(
    bootstrap: str, topic: str, events: list[tuple[Sent, bytes]],
    gates: dict[int, asyncio.Event],
) -> None:
    """Send ``events`` in paced chunks; the chunk starting at index ``i`` awaits ``gates[i]``."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for start in range(0, len(events), CHUNK):
            if start in gates:
                await gates[start].wait()
            deliveries = [
                await producer.send(
                    topic, value, key=str(sent.correlation_id).encode(),
                    headers=[("traceparent", f"00-{sent.trace_id}-{sent.span_id}-01".encode())],
                )
                for sent, value in events[start:start + CHUNK]
            ]
            await asyncio.gather(*deliveries)
            await asyncio.sleep(PACE_S)  # a stream, not one burst: the rebalances meet it
    finally:
        await producer.stop()


class Derived:
    """Reads the derived events as they arrive."""

    def __init__(self) -> None:
        self.ids: Counter[UUID] = Counter()
        self.records: list[Any] = []

    async def read(self, bootstrap: str, topic: str, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        self.records.append(record)
                        self.ids[UUID(json.loads(record.value)["event_id"])] += 1
        finally:
            await consumer.stop()


def _traceparent(record: Any) -> str | None:
    found = None
    for key, value in record.headers:
        if key == "traceparent":
            found = value.decode()
    return found


async def test_scaled_out_workers_lose_nothing_across_kill_and_join(
    set_up_project, tansu, kit_package, tmp_path
):
    project = set_up_project(ANSWER_SET)
    receiver = _receiver_module()
    topic = await kit_package.testing.new_topic(tansu, "scale-in", partitions=PARTITIONS)
    out_topic = await kit_package.testing.new_topic(tansu, "scale-out", partitions=PARTITIONS)
    events = _events(EVENTS)
    senders = {sent.trace_id: sent for sent, _ in events}
    expected = {uuid5(sent.event_id, DERIVED_TYPE) for sent, _ in events}
    derived = Derived()
    reading = asyncio.Event()

    with receiver.otlp_grpc_receiver() as (endpoint, collector), _workers() as workers:
        env = {
            **project_env(),
            "KAFKA_BOOTSTRAP_SERVERS": tansu,
            "CONSUME_TOPICS": topic,
            "PRODUCE_TOPIC": out_topic,
            "CONSUMER_GROUP": f"scale-{uuid4().hex[:8]}",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_BSP_MAX_QUEUE_SIZE": "100000",
        }
        workers.extend(Worker(project, f"worker-{n}", env, tmp_path) for n in range(INSTANCES))
        await _wait_for(
            lambda: all(worker.has_partitions() for worker in workers), "the group to form"
        )
        victim = newcomer = workers[0]
        reader = asyncio.create_task(derived.read(tansu, out_topic, reading))
        killed, joined = asyncio.Event(), asyncio.Event()
        third = EVENTS // 3 // CHUNK * CHUNK
        gates = {third: killed, 2 * third: joined}
        sender = asyncio.create_task(_send_stream(tansu, topic, events, gates))
        try:
            await _wait_for(lambda: len(derived.ids) >= KILL_AT * EVENTS, "the first events")
            victim = workers[0]
            victim.stop(signal.SIGKILL)
            victim.process.wait()
            killed.set()
            survivors = workers[1:]
            before = {worker.name: worker.assignments() for worker in survivors}
            await _wait_for(
                lambda: all(worker.assignments() > before[worker.name] for worker in survivors),
                "the survivors to take the victim's partitions over",
            )
            newcomer = Worker(project, f"worker-{INSTANCES}", env, tmp_path)
            workers.append(newcomer)
            await _wait_for(newcomer.has_partitions, "the newcomer to get partitions")
            joined.set()
            await sender
            await _wait_for(lambda: set(derived.ids) >= expected, "every derived event")
        finally:
            survivors = [worker for worker in workers if worker is not victim]
            for worker in survivors:
                worker.stop(signal.SIGTERM)
            codes = {worker.name: worker.wait() for worker in workers}
            await asyncio.sleep(1.0)  # the last derived records of the stop reach the reader
            reading.set()
            await reader
        full_logs = [worker.log() for worker in workers]
        logs = "\n".join(
            f"--- {worker.name}\n{log[-3000:]}"
            for worker, log in zip(workers, full_logs, strict=True)
        )
        if os.environ.get("SCAFFOLD_SCALE_LOGS"):
            for worker, log in zip(workers, full_logs, strict=True):
                print(f"--- {worker.name}")
                print("\n".join(line[:240] for line in log.splitlines()
                                if "aiokafka" not in line or "group" in line.lower()))
        happened = {
            what: sum(log.count(what) for log in full_logs)
            for what in ("partitions revoked", "abandoned", "failed (")
        }
        spans = collector.spans_with_resource()

    duplicates = sum(count - 1 for count in derived.ids.values())
    print(
        f"{EVENTS} events, {len(derived.records)} derived records, "
        f"{len(derived.ids)} distinct, {duplicates} duplicates; {len(spans)} spans exported; "
        f"in the workers' logs: {happened}"
    )
    assert codes[victim.name] == -signal.SIGKILL
    assert all(codes[worker.name] == 0 for worker in survivors), (codes, logs)

    # Every event's derived event, at least once, and nothing else.
    assert set(derived.ids) == expected, logs
    assert len(derived.ids) == EVENTS

    # Every derived event is in its sender's trace, in both carriers.
    by_correlation = {sent.correlation_id: sent for sent, _ in events}
    for record in derived.records:
        body = json.loads(record.value)
        source = by_correlation[UUID(body["correlation_id"])]
        traceparent = _traceparent(record)
        assert traceparent is not None and traceparent.split("-")[1] == source.trace_id
        assert body["metadata"]["traceparent"].split("-")[1] == source.trace_id

    # Every CONSUMER span (killed and abandoned work included) is its sender's child.
    consumers = [span for _, span in spans if span.kind == span.SPAN_KIND_CONSUMER]
    assert consumers
    for span in consumers:
        source = senders.get(span.trace_id.hex())
        assert source is not None, span.name
        assert span.parent_span_id.hex() == source.span_id, span.name

    # The survivors ended every span they started: whatever they exported under one of their
    # spans (thread work, the send of the derived event) has that parent exported as well.
    for worker in survivors:
        own = [span for resource, span in spans
               if resource.get("service.instance.id") == worker.name]
        assert own, f"{worker.name} exported nothing"
        exported = {span.span_id for span in own}
        orphans = [span.name for span in own
                   if span.kind != span.SPAN_KIND_CONSUMER and span.parent_span_id not in exported]
        assert not orphans, f"{worker.name}: parents never ended for {Counter(orphans)}"
        assert sum(span.kind == span.SPAN_KIND_CONSUMER for span in own) > 0

