"""10,000 records through the consumer helper, some failing, some cancelled: no context leaks."""

from __future__ import annotations

import asyncio
from collections import Counter

from opentelemetry import context
from opentelemetry.trace import StatusCode

RECORDS = 10_000
UPSTREAM = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _records(make_record, count: int) -> list:
    headers = (("traceparent", UPSTREAM.encode()),)
    return [
        make_record(headers=headers if offset % 3 else (("traceparent", b"\xff"),), offset=offset)
        for offset in range(count)
    ]


async def _handler(tracer, offset: int) -> None:
    """Does a little traced work; every 11th fails, every 13th is cancelled mid-await."""
    with tracer.start_as_current_span("handle"):
        if offset % 11 == 0:
            raise ValueError(f"record {offset} is invalid")
        if offset % 13 == 0:
            loop = asyncio.get_running_loop()
            pending = loop.create_future()
            loop.call_soon(pending.cancel)
            await pending
        await asyncio.sleep(0)


async def test_ten_thousand_records_leave_the_context_exactly_as_before(
    kit_package, make_record, span_exporter
):
    tracer = kit_package.get_tracer()
    before = context.get_current()
    outcomes: Counter[str] = Counter()
    for record in _records(make_record, RECORDS):
        try:
            with kit_package.consume_span(record, group_id="graders"):
                await _handler(tracer, record.offset)
            outcomes["ok"] += 1
        except ValueError:
            outcomes["failed"] += 1
        except asyncio.CancelledError:
            outcomes["cancelled"] += 1
        assert context.get_current() is before, f"leak after offset {record.offset}"

    assert outcomes["failed"] == len(range(0, RECORDS, 11))
    assert outcomes["cancelled"] > 0 and outcomes["ok"] > 0
    process = [s for s in span_exporter.get_finished_spans() if s.name == "process orders"]
    assert len(process) == RECORDS
    errors = sum(s.status.status_code is StatusCode.ERROR for s in process)
    cancelled = sum(any(e.name == "cancelled" for e in s.events) for s in process)
    assert (errors, cancelled) == (outcomes["failed"], outcomes["cancelled"])


async def test_control_attach_without_finally_leaks_on_the_first_failure(
    kit_package, make_record, span_exporter
):
    """The HuleEdu before/after-hook shape: detach only on the happy path. The guard sees it."""
    tracer = kit_package.get_tracer()
    before = context.get_current()
    leaked_at = None
    for record in _records(make_record, 100):
        try:
            token = context.attach(kit_package.extract_context(record))
            await _handler(tracer, record.offset)
            context.detach(token)
        except (ValueError, asyncio.CancelledError):
            pass
        if context.get_current() is not before:
            leaked_at = record.offset
            break
    context.attach(before)  # leave this task as the test found it
    assert leaked_at == 0
