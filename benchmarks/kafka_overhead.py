"""`make bench`: CPU cost per Kafka message of the kit against contrib's aiokafka instrumentation.

Modes, each in its own process against the same real broker (Tansu) in the same run:
uninstrumented aiokafka; the kit (``traced_send`` + ``consume_span``, set up by its own
``init_tracing``); ``opentelemetry-instrumentation-aiokafka`` (contrib); and "bare-spans", one
attribute-less SDK span per produce and per consume without propagation, the floor of any
instrumentation that creates a span per message. Tracing modes use the SDK with a
``BatchSpanProcessor`` and a null exporter. Reported: CPU microseconds per message
(``time.process_time``: every thread of the process, the span processor's worker included) for
produce and for consume, the cost each mode adds over the uninstrumented baseline, and the kit's
added cost as a ratio of contrib's (target: at most 0.4).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TARGET_RATIO = 0.4
MODES = ("uninstrumented", "bare-spans", "kit", "contrib")
MESSAGES = 2000
ROUNDS = 5
WARMUP = 300
PAYLOAD = b"x" * 256


class _Exported:
    spans = 0


def _null_exporter():
    """A span exporter that only counts: the cost measured is the SDK's, not the wire's."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class NullExporter(SpanExporter):
        def export(self, spans):
            _Exported.spans += len(spans)
            return SpanExportResult.SUCCESS

    return NullExporter()


def _install_sdk_with_null_exporter() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_null_exporter()))
    trace.set_tracer_provider(provider)


async def _create_topic(bootstrap: str) -> str:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    name = f"bench-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def _measure_mode(mode: str, bootstrap: str, messages: int, rounds: int) -> dict:
    """Per-message CPU microseconds of producing and consuming, median over ``rounds``."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition

    send = consume = None
    if mode == "uninstrumented":
        _install_sdk_with_null_exporter()
    elif mode == "contrib":
        _install_sdk_with_null_exporter()
        from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor

        AIOKafkaInstrumentor().instrument()
    elif mode == "bare-spans":
        _install_sdk_with_null_exporter()
        from opentelemetry import trace

        tracer = trace.get_tracer("bench")

        async def send(producer, topic, value, wait):
            tracer.start_span("send").end()
            return await producer.send(topic, value)

        def consume(record):
            tracer.start_span("process").end()
            return contextlib.nullcontext()

    elif mode == "kit":
        kit = importlib.import_module("benchkit.tracekit")
        # The kit's real setup: its sampler, the correlation-id processor, a batch processor.
        kit.init_tracing("bench", exporter=_null_exporter())
        send, consume = kit.traced_send, kit.consume_span
    else:
        raise SystemExit(f"unknown mode {mode!r}")

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    produce_us, consume_us = [], []
    try:
        for round_index in range(rounds + 1):  # round 0 warms up caches and connections
            count = WARMUP if round_index == 0 else messages
            topic = await _create_topic(bootstrap)

            started = time.process_time()
            if send is None:
                deliveries = [await producer.send(topic, PAYLOAD) for _ in range(count)]
            else:
                deliveries = [
                    await send(producer, topic, PAYLOAD, wait=False) for _ in range(count)
                ]
            await asyncio.gather(*deliveries)
            produced = time.process_time() - started

            consumer.assign([TopicPartition(topic, 0)])
            await consumer.seek_to_beginning()
            started = time.process_time()
            for _ in range(count):
                record = await consumer.getone()
                if consume is not None:
                    with consume(record):
                        pass
            consumed = time.process_time() - started

            if round_index:
                produce_us.append(produced / count * 1e6)
                consume_us.append(consumed / count * 1e6)
    finally:
        await consumer.stop()
        await producer.stop()
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    provider.force_flush()
    total = WARMUP + messages * rounds
    return {
        "mode": mode,
        "spans_per_message": _Exported.spans / total,
        "produce_us": statistics.median(produce_us),
        "consume_us": statistics.median(consume_us),
    }


def _run_mode(mode: str, bootstrap: str, kit_root: Path, messages: int, rounds: int) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--mode", mode, "--bootstrap", bootstrap,
         "--messages", str(messages), "--rounds", str(rounds)],
        capture_output=True, text=True, env={**_clean_env(), "PYTHONPATH": str(kit_root)},
    )
    if done.returncode != 0:
        raise SystemExit(f"mode {mode} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)

    if args.mode:  # a child process: measure one mode, print one JSON line
        result = asyncio.run(_measure_mode(args.mode, args.bootstrap, args.messages, args.rounds))
        print(json.dumps(result))
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from scaffold.kit import render_kit

    with tempfile.TemporaryDirectory(prefix="bench-kit-") as root:
        package = Path(root) / "benchkit"
        package.mkdir()
        (package / "__init__.py").write_text("")
        render_kit(package / "tracekit", package_name="benchkit")
        sys.path.insert(0, root)
        testing = importlib.import_module("benchkit.tracekit.testing")
        with testing.tansu_broker() as bootstrap:
            results = {
                mode: _run_mode(mode, bootstrap, Path(root), args.messages, args.rounds)
                for mode in MODES
            }

    base = results["uninstrumented"]
    print(f"Kafka tracing overhead, CPU us/message (median of {args.rounds} rounds x "
          f"{args.messages} messages, SDK + BatchSpanProcessor + null exporter, Tansu broker)")
    print(f"{'mode':<16}{'produce':>10}{'consume':>10}{'total':>10}{'added':>10}{'spans/msg':>11}")
    base_total = base["produce_us"] + base["consume_us"]
    added = {}
    for mode in MODES:
        row = results[mode]
        total = row["produce_us"] + row["consume_us"]
        added[mode] = total - base_total
        print(f"{mode:<16}{row['produce_us']:>10.1f}{row['consume_us']:>10.1f}"
              f"{total:>10.1f}{added[mode]:>10.1f}{row['spans_per_message']:>11.1f}")
    for phase in ("produce_us", "consume_us"):
        kit_added = results["kit"][phase] - base[phase]
        contrib_added = results["contrib"][phase] - base[phase]
        print(f"{phase.removesuffix('_us')}: kit adds {kit_added:.1f} us, contrib adds "
              f"{contrib_added:.1f} us, ratio {kit_added / contrib_added:.2f}")
    floor = added["bare-spans"] / added["contrib"]
    print(f"floor: one bare SDK span per produce and per consume (no attributes, no propagation)"
          f" already costs {floor:.2f} of contrib's added cost")
    ratio = added["kit"] / added["contrib"]
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(f"kit added cost / contrib added cost = {ratio:.2f} "
          f"({verdict} the target of at most {TARGET_RATIO})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
