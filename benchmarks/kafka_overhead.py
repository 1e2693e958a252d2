"""`make bench`: CPU cost per Kafka message of the kit against contrib's aiokafka instrumentation.

Every mode runs in its own process against the same real broker (Tansu) in the same run, on the
same SDK set-up: a plain ``TracerProvider`` with a ``BatchSpanProcessor`` over a null exporter,
installed before the mode's instrumentation (the kit's ``init_tracing`` adopts it, contrib's
instrumentor uses it). Modes:

- ``uninstrumented``: plain aiokafka, the baseline every "added" figure is measured from;
- ``bare-spans``: one attribute-less SDK span per produce and per consume, no propagation: the
  floor of any instrumentation that creates a span per message;
- ``semconv-spans``: the same spans with the kind and the messaging attributes the kit sets at
  creation, and a fixed ``traceparent`` header on every message (aiokafka encodes and decodes
  it), but no propagation logic: the floor of instrumentation whose attributes reach samplers
  and whose context travels in headers;
- ``kit``: ``traced_send(..., wait=False)`` and ``with consume_span(record)``;
- ``contrib``: ``opentelemetry-instrumentation-aiokafka``'s ``AIOKafkaInstrumentor``, with the
  same ``producer.send`` / ``consumer.getone()`` calls as the baseline;
- ``kit@0.01`` and ``contrib@0.01``: the same two with the provider sampling one trace in a
  hundred (``ParentBased(TraceIdRatioBased(0.01))``; the consumer span follows its producer's
  decision). What remains at low sampling is mostly propagation: the context is still written
  into and read from every message's headers.

Each process warms up (one round of ``WARMUP`` messages), then measures ``--rounds`` rounds of
``--messages`` messages on a fresh topic: CPU time (``time.process_time``: every thread, the span
processor's worker included) of sending them all and awaiting delivery, and of reading them all
back (and handling each in the mode's consumer span). Processes run in ``--passes`` passes, the
mode order rotated each pass, so drift in machine load spreads over all modes; a figure is the
median over every round of every pass. After the timed rounds each tracing mode sends and reads
``CHECK_MESSAGES`` more with its spans kept, to show it did the work it is credited with: spans
per message, and the share of consumer spans whose parent is a producer span ("joined": 100% for
the kit and contrib, 0% for ``semconv-spans``, whose consumer spans are roots; at 0.01 few or no
spans are kept, so spans per message is about 0.02 and "joined" covers the sampled ones only).
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
from pathlib import Path

TARGET_RATIO = 0.4
MODES = (
    "uninstrumented", "bare-spans", "semconv-spans", "kit", "contrib", "kit@0.01", "contrib@0.01"
)
LOW_RATIO = 0.01
MESSAGES = 2000
ROUNDS = 5
PASSES = 3
WARMUP = 300
CHECK_MESSAGES = 50
SPAN_QUEUE = 1 << 16
PAYLOAD = b"x" * 256
FIXED_HEADERS = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]


class _Exported:
    """What the null exporter saw: a count always, span relations only while ``keep`` is set."""

    count = 0
    keep = False
    kept: list[tuple[str, int, int | None]] = []  # (kind, span id, parent span id)


def _null_exporter():
    """A span exporter that only counts: the cost measured is the SDK's, not the wire's."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class NullExporter(SpanExporter):
        def export(self, spans):
            _Exported.count += len(spans)
            if _Exported.keep:
                _Exported.kept.extend(
                    (span.kind.name, span.context.span_id, span.parent and span.parent.span_id)
                    for span in spans
                )
            return SpanExportResult.SUCCESS

    return NullExporter()


def _install_sdk_with_null_exporter(ratio: float | None = None):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    # None: the SDK's default sampler (ParentBased(ALWAYS_ON)), as for every full-sampling mode.
    provider = TracerProvider() if ratio is None else TracerProvider(
        sampler=ParentBased(TraceIdRatioBased(ratio))
    )
    # A queue no round can fill: a dropped span would be work a mode is credited with but skipped.
    provider.add_span_processor(BatchSpanProcessor(_null_exporter(), max_queue_size=SPAN_QUEUE))
    trace.set_tracer_provider(provider)
    return provider


def _span_floor(with_attributes: bool):
    """Send and consume hooks creating one span each; with attributes, also a fixed header."""
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    tracer = trace.get_tracer("bench")

    if not with_attributes:

        async def send(producer, topic, value, wait):
            tracer.start_span("send").end()
            return await producer.send(topic, value)

        def consume(record):
            tracer.start_span("process").end()
            return contextlib.nullcontext()

        return send, consume

    async def send(producer, topic, value, wait):
        tracer.start_span(f"send {topic}", kind=SpanKind.PRODUCER, attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.operation.name": "send",
            "messaging.operation.type": "send",
        }).end()
        return await producer.send(topic, value, headers=FIXED_HEADERS)

    def consume(record):
        tracer.start_span(f"process {record.topic}", kind=SpanKind.CONSUMER, attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic,
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
        }).end()
        return contextlib.nullcontext()

    return send, consume


def _set_up(mode: str):
    """Install the shared SDK set-up and the mode's instrumentation; its send/consume hooks."""
    mode, _, ratio = mode.partition("@")
    # The kit is imported before the provider exists, as a service imports it at module level.
    kit = importlib.import_module("benchkit.tracekit") if mode == "kit" else None
    provider = _install_sdk_with_null_exporter(float(ratio) if ratio else None)
    if mode == "uninstrumented":
        return provider, None, None
    if mode == "bare-spans":
        return provider, *_span_floor(with_attributes=False)
    if mode == "semconv-spans":
        return provider, *_span_floor(with_attributes=True)
    if kit is not None:
        kit.init_tracing("bench")  # adopts the provider above; installs the kit's propagator
        return provider, kit.traced_send, kit.consume_span
    if mode == "contrib":
        from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor

        AIOKafkaInstrumentor().instrument()
        return provider, None, None
    raise SystemExit(f"unknown mode {mode!r}")


async def _round(producer, consumer, send, consume, bootstrap: str, count: int):
    """CPU seconds to send ``count`` messages to a fresh topic, and to read and handle them."""
    from aiokafka.structs import TopicPartition

    # a fresh single-partition topic, outside the measured part (the kit's test support)
    topic = await importlib.import_module("benchkit.tracekit.testing").new_topic(bootstrap, "bench")
    started = time.process_time()
    if send is None:
        deliveries = [await producer.send(topic, PAYLOAD) for _ in range(count)]
    else:
        deliveries = [await send(producer, topic, PAYLOAD, wait=False) for _ in range(count)]
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
    return produced, consumed


def _joined_share() -> float | None:
    """Share of the kept consumer spans whose parent is a kept producer span (``None``: none)."""
    producers = {span_id for kind, span_id, _ in _Exported.kept if kind == "PRODUCER"}
    parents = [parent for kind, _, parent in _Exported.kept if kind == "CONSUMER"]
    if not parents:
        return None
    return sum(parent in producers for parent in parents) / len(parents)


async def _measure_mode(mode: str, bootstrap: str, messages: int, rounds: int) -> dict:
    """Per-message CPU microseconds of producing and consuming, one value per timed round."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    provider, send, consume = _set_up(mode)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    produce_us, consume_us = [], []
    try:
        await _round(producer, consumer, send, consume, bootstrap, WARMUP)
        for _ in range(rounds):
            produced, consumed = await _round(
                producer, consumer, send, consume, bootstrap, messages
            )
            produce_us.append(produced / messages * 1e6)
            consume_us.append(consumed / messages * 1e6)
        provider.force_flush()
        timed_spans = _Exported.count
        _Exported.keep = True
        await _round(producer, consumer, send, consume, bootstrap, CHECK_MESSAGES)
        provider.force_flush()
    finally:
        await consumer.stop()
        await producer.stop()
    return {
        "mode": mode,
        "produce_us": produce_us,
        "consume_us": consume_us,
        "spans_per_message": timed_spans / (WARMUP + messages * rounds),
        "joined": _joined_share(),
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


def measure(messages: int, rounds: int, passes: int) -> dict[str, dict]:
    """Every mode's rounds from every pass, against one broker started for the run."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from scaffold.kit import render_kit

    collected = {mode: {"produce_us": [], "consume_us": [], "checks": []} for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="bench-kit-") as root:
        package = Path(root) / "benchkit"
        package.mkdir()
        (package / "__init__.py").write_text("")
        render_kit(package / "tracekit", package_name="benchkit")
        sys.path.insert(0, root)
        testing = importlib.import_module("benchkit.tracekit.testing")
        with testing.tansu_broker() as bootstrap:
            for index in range(passes):
                shift = index % len(MODES)
                for mode in MODES[shift:] + MODES[:shift]:
                    result = _run_mode(mode, bootstrap, Path(root), messages, rounds)
                    collected[mode]["produce_us"] += result["produce_us"]
                    collected[mode]["consume_us"] += result["consume_us"]
                    collected[mode]["checks"].append(
                        {"spans_per_message": result["spans_per_message"],
                         "joined": result["joined"]}
                    )
    return collected


def summarise(collected: dict[str, dict]) -> dict:
    """Medians per mode, what each adds over the baseline, and the kit/contrib ratios."""
    rows = {}
    for mode, values in collected.items():
        produce = statistics.median(values["produce_us"])
        consume = statistics.median(values["consume_us"])
        rows[mode] = {
            "produce_us": produce,
            "consume_us": consume,
            "spans_per_message": min(c["spans_per_message"] for c in values["checks"]),
            "joined": [c["joined"] for c in values["checks"]],
        }
    base = rows["uninstrumented"]
    for row in rows.values():
        row["produce_added"] = row["produce_us"] - base["produce_us"]
        row["consume_added"] = row["consume_us"] - base["consume_us"]
        row["added"] = row["produce_added"] + row["consume_added"]
    contrib = rows["contrib"]
    low_kit, low_contrib = rows[f"kit@{LOW_RATIO}"], rows[f"contrib@{LOW_RATIO}"]
    return {
        "rows": rows,
        "low_ratio": low_kit["added"] / low_contrib["added"],
        "ratio": rows["kit"]["added"] / contrib["added"],
        "produce_ratio": rows["kit"]["produce_added"] / contrib["produce_added"],
        "consume_ratio": rows["kit"]["consume_added"] / contrib["consume_added"],
        "bare_floor": rows["bare-spans"]["added"] / contrib["added"],
        "semconv_floor": rows["semconv-spans"]["added"] / contrib["added"],
        "target": TARGET_RATIO,
    }


def _joined_text(shares: list[float | None]) -> str:
    if any(share is None for share in shares):
        return "-"
    return f"{min(shares):.0%}"


def report(summary: dict, messages: int, rounds: int, passes: int) -> None:
    rows = summary["rows"]
    print(f"Kafka tracing overhead, CPU us/message: median of {passes} passes x {rounds} rounds "
          f"x {messages} messages per mode; one SDK set-up for every mode (TracerProvider + "
          f"BatchSpanProcessor + null exporter); Tansu broker")
    print(f"{'mode':<18}{'produce':>10}{'consume':>10}{'total':>10}{'added':>10}"
          f"{'spans/msg':>11}{'joined':>8}")
    for mode, row in rows.items():
        total = row["produce_us"] + row["consume_us"]
        print(f"{mode:<18}{row['produce_us']:>10.1f}{row['consume_us']:>10.1f}{total:>10.1f}"
              f"{row['added']:>10.1f}{row['spans_per_message']:>11.2f}"
              f"{_joined_text(row['joined']):>8}")
    print("joined: share of consumer spans whose parent is a producer span (lowest of the passes)")
    kit, contrib = rows["kit"], rows["contrib"]
    print(f"produce: kit adds {kit['produce_added']:.1f} us, contrib adds "
          f"{contrib['produce_added']:.1f} us, ratio {summary['produce_ratio']:.2f}")
    print(f"consume: kit adds {kit['consume_added']:.1f} us, contrib adds "
          f"{contrib['consume_added']:.1f} us, ratio {summary['consume_ratio']:.2f}")
    print(f"floors, as a share of contrib's added cost: bare spans {summary['bare_floor']:.2f}; "
          f"spans with the kit's semconv attributes {summary['semconv_floor']:.2f}; the kit adds "
          f"{kit['added'] - rows['semconv-spans']['added']:.1f} us over the latter (formatting "
          f"and parsing the context, the parent, the current span, the delivery attributes)")
    low_kit, low_contrib = rows[f"kit@{LOW_RATIO}"], rows[f"contrib@{LOW_RATIO}"]
    print(f"at sampler ratio {LOW_RATIO}: kit adds {low_kit['added']:.1f} us, contrib adds "
          f"{low_contrib['added']:.1f} us, ratio {summary['low_ratio']:.2f}; the kit keeps "
          f"{low_kit['added'] / kit['added']:.2f} of its full-sampling cost, contrib "
          f"{low_contrib['added'] / contrib['added']:.2f}")
    verdict = "meets" if summary["ratio"] <= TARGET_RATIO else "MISSES"
    print(f"kit added cost / contrib added cost = {summary['ratio']:.2f} "
          f"({verdict} the target of at most {TARGET_RATIO})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--passes", type=int, default=PASSES)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)

    if args.mode:  # a child process: measure one mode, print one JSON line
        result = asyncio.run(_measure_mode(args.mode, args.bootstrap, args.messages, args.rounds))
        print(json.dumps(result))
        return 0

    summary = summarise(measure(args.messages, args.rounds, args.passes))
    if args.json:
        print(json.dumps(summary))
    else:
        report(summary, args.messages, args.rounds, args.passes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
