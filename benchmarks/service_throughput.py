"""`make bench`: throughput and CPU per event of one generated worker, tracing on and off.

A worker service is generated from this checkout's template (``scaffold new``, framework
``worker``) and run as ``python -m <package>``, a real process, against a real Tansu broker,
exporting its spans over OTLP/gRPC to a real receiver in this process. It runs on this
interpreter (the same pinned OpenTelemetry, aiokafka and pydantic versions the generated
``pyproject.toml`` pins), with the generated project on ``PYTHONPATH``. Modes, in the same run:

- ``ratio 1.0``: every trace sampled (``parentbased_traceidratio``, argument 1.0);
- ``ratio 0.01``: one trace in a hundred sampled, context still propagated on every record;
- ``sdk disabled``: ``OTEL_SDK_DISABLED=true``, the baseline (the kit's calls stay in the code).

Each run pre-loads ``--events`` envelopes without trace context (so the worker's sampler
decides) into a fresh 1-partition topic, starts a fresh worker in a fresh group, and measures
from the moment the worker logs its partition assignment until every derived event has been
read back: wall time (events per second) and the worker's CPU time (user + system of all its
threads, from ``/proc``) per event. Runs repeat in ``--passes`` passes, the mode order rotated
each pass; figures are medians. Spans received per event are printed to show each mode did the
work it is credited with.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EVENTS = 2000
PASSES = 3
MODES = {
    "ratio 1.0": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                  "OTEL_TRACES_SAMPLER_ARG": "1.0"},
    "ratio 0.01": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                   "OTEL_TRACES_SAMPLER_ARG": "0.01"},
    "sdk disabled": {"OTEL_SDK_DISABLED": "true"},
}
BASELINE = "sdk disabled"
PACKAGE = "benchworker"
ANSWERS = {
    "service_name": "bench_worker",
    "package_name": PACKAGE,
    "framework": "worker",
    "carrier": "both",
    "otlp_protocol": "grpc",
    "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
}
RECEIVER_TEMPLATE = (
    "templates/service/tests/"
    "{% if otlp_protocol == 'grpc' %}otlp_grpc_receiver.py{% endif %}.jinja"
)
CHUNK = 500
TIMEOUT_S = 600.0  # a safety net for a broken worker, never a measurement
TICKS = os.sysconf("SC_CLK_TCK")


def _receiver_module() -> ModuleType:
    """The OTLP/gRPC receiver the generated projects' tests use, rendered from the template."""
    import jinja2

    path = ROOT / RECEIVER_TEMPLATE
    spec = importlib.util.spec_from_loader("bench_otlp_grpc_receiver", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    source = jinja2.Template(path.read_text()).render()
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process, every thread included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _envelope(index: int) -> bytes:
    return json.dumps({
        "event_type": "essay.submitted",
        "source_service": "bench",
        "correlation_id": str(uuid.uuid4()),
        "data": {"n": index, "text": "Det var en gång " * 8},
    }).encode()


async def _preload(bootstrap: str, topic: str, events: int) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for start in range(0, events, CHUNK):
            deliveries = [await producer.send(topic, _envelope(index))
                          for index in range(start, min(events, start + CHUNK))]
            await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


async def _read(bootstrap: str, topic: str, events: int) -> None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen = 0
    try:
        async with asyncio.timeout(TIMEOUT_S):
            while seen < events:
                batch = await consumer.getmany(timeout_ms=100)
                seen += sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()


async def _run(mode: str, project: Path, bootstrap: str, endpoint: str, collector,
               events: int, testing: ModuleType, logs: Path) -> dict:
    topic = await testing.new_topic(bootstrap, "bench-in", partitions=1)
    out_topic = await testing.new_topic(bootstrap, "bench-out", partitions=1)
    await _preload(bootstrap, topic, events)
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(
        PYTHONPATH=str(project),
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        CONSUME_TOPICS=topic,
        PRODUCE_TOPIC=out_topic,
        CONSUMER_GROUP=f"bench-{uuid.uuid4().hex[:8]}",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_BSP_MAX_QUEUE_SIZE="65536",
        **MODES[mode],
    )
    spans_before = len(collector.spans())
    log_path = logs / f"{mode.replace(' ', '-')}-{uuid.uuid4().hex[:6]}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", PACKAGE], env=env, cwd=project,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while "partitions assigned" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{mode}: the worker did not start:\n{log_path.read_text()}")
            await asyncio.sleep(0.02)
        cpu_start, wall_start = _cpu_seconds(process.pid), time.perf_counter()
        await _read(bootstrap, out_topic, events)
        cpu, wall = _cpu_seconds(process.pid) - cpu_start, time.perf_counter() - wall_start
    finally:
        process.terminate()
        process.wait(timeout=60)
    if process.returncode != 0:
        raise SystemExit(f"{mode}: worker exited {process.returncode}:\n{log_path.read_text()}")
    return {
        "events_per_s": events / wall,
        "cpu_us_per_event": cpu / events * 1e6,
        "spans_per_event": (len(collector.spans()) - spans_before) / events,
    }


def _generate(dest: Path) -> Path:
    from scaffold.new_service import create_service

    return create_service(dest / "bench_worker", data=ANSWERS, defaults=True, quiet=True)


async def measure(events: int, passes: int) -> dict[str, list[dict]]:
    from scaffold.kit import render_kit

    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    receiver = _receiver_module()
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        root = Path(tmp)
        project = _generate(root)
        kit = root / "kit" / "benchkit"
        kit.mkdir(parents=True)
        (kit / "__init__.py").write_text("")
        render_kit(kit / "tracekit", package_name="benchkit")
        sys.path.insert(0, str(kit.parent))
        import benchkit.tracekit.testing as testing  # type: ignore[import-not-found]

        modes = list(MODES)
        with testing.tansu_broker() as bootstrap, receiver.otlp_grpc_receiver() as (
            endpoint, collector
        ):
            for index in range(passes):
                shift = index % len(modes)
                for mode in modes[shift:] + modes[:shift]:
                    results[mode].append(await _run(
                        mode, project, bootstrap, endpoint, collector, events, testing, root
                    ))
    return results


def summarise(results: dict[str, list[dict]]) -> dict:
    rows = {
        mode: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        for mode, runs in results.items()
    }
    base = rows[BASELINE]
    for row in rows.values():
        row["throughput_ratio"] = row["events_per_s"] / base["events_per_s"]
        row["cpu_ratio"] = row["cpu_us_per_event"] / base["cpu_us_per_event"]
    return {"rows": rows}


def report(summary: dict, events: int, passes: int) -> None:
    print(f"Generated worker throughput: one `python -m {PACKAGE}` process against Tansu, "
          f"{events} events per run, median of {passes} passes, mode order rotated")
    print(f"{'mode':<14}{'events/s':>10}{'CPU us/event':>14}{'spans/event':>13}"
          f"{'throughput':>12}{'CPU':>8}")
    for mode, row in summary["rows"].items():
        print(f"{mode:<14}{row['events_per_s']:>10.0f}{row['cpu_us_per_event']:>14.0f}"
              f"{row['spans_per_event']:>13.2f}{row['throughput_ratio']:>12.2f}"
              f"{row['cpu_ratio']:>8.2f}")
    print(f"throughput and CPU as ratios to `{BASELINE}` (OTEL_SDK_DISABLED=true)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--passes", type=int, default=PASSES)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    summary = summarise(asyncio.run(measure(args.events, args.passes)))
    if args.json:
        print(json.dumps(summary))
    else:
        report(summary, args.events, args.passes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
