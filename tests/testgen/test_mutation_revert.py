"""The mutation check puts back the un-instrumented form of exactly one site at a time."""

from __future__ import annotations

import textwrap

import pytest

from scaffold.mutation import revert_site
from scaffold.testgen.locate import locate


def reverted(source: str, index: int = 0) -> str:
    source = textwrap.dedent(source)
    sites = locate(source, path="service/app.py", module="service.app",
                   repo_packages={"service"}, kit="service.tracekit").cases
    return revert_site(source, sites[index].site)


CASES = {
    "traced_send back to send_and_wait": (
        "await traced_send(self._producer, topic, value, key=key, headers=headers)",
        "await self._producer.send_and_wait(topic, value, key=key, headers=headers)",
    ),
    "traced_send without waiting back to send": (
        "await traced_send(producer, topic, value, wait=False)",
        "await producer.send(topic, value)",
    ),
    "traced_publish back to the wrapper's own call": (
        "await traced_publish(self._bus.publish, topic, envelope, headers=None)",
        "await self._bus.publish(topic, envelope, headers=None)",
    ),
    "traced_publish of a dict-taking wrapper back to its own call": (
        "await traced_publish(self._bus.publish, topic, envelope, key=k, headers_as=dict)",
        "await self._bus.publish(topic, envelope, key=k)",
    ),
    "an injection back to its carrier": (
        "inject_trace_context(headers)",
        "headers",
    ),
    "an assigned injection back to the carrier": (
        "envelope.metadata = inject_metadata(envelope.metadata)",
        "envelope.metadata = envelope.metadata",
    ),
    "submit back to the executor's submit": (
        "future = submit(self._pool, work, item)",
        "future = self._pool.submit(work, item)",
    ),
    "executor_map back to map": (
        "results = executor_map(pool, work, items, timeout=5)",
        "results = pool.map(work, items, timeout=5)",
    ),
    "run_in_executor with a loop": (
        "await run_in_executor(loop, pool, work, item)",
        "await (loop or __import__('asyncio').get_running_loop()).run_in_executor(pool, work, "
        "item)",
    ),
    "run_in_executor without a loop": (
        "await run_in_executor(None, None, work)",
        "await __import__('asyncio').get_running_loop().run_in_executor(None, work)",
    ),
    "a queued item's capture back to the item": (
        "await pipe.lpush(key, json.dumps(capture_for_queue(entry)))",
        "await pipe.lpush(key, json.dumps(entry))",
    ),
    "a capture of a built item back to that item": (
        "producer.xadd(key, capture_for_queue({**item, 'phase': 'start'}))",
        "producer.xadd(key, {**item, 'phase': 'start'})",
    ),
    "a capture given its item by keyword back to the item": (
        "producer.rpush(key, json.dumps(capture_for_queue(item=entry, correlation_id=key)))",
        "producer.rpush(key, json.dumps(entry))",
    ),
    "TracedThread back to threading.Thread": (
        "TracedThread(target=work).start()",
        "__import__('threading').Thread(target=work).start()",
    ),
}


@pytest.mark.parametrize(("written", "plain"), CASES.values(), ids=CASES.keys())
def test_a_kit_call_goes_back_to_the_plain_call(written, plain):
    source = (
        "from service.tracekit import inject_metadata, inject_trace_context, traced_send\n"
        "from service.tracekit import TracedThread, executor_map, run_in_executor, submit\n"
        "from service.tracekit import capture_for_queue, traced_publish\n\n"
        "async def site(self, producer, topic, value, key, headers, envelope, pool, loop, work,"
        " item, items, pipe, entry, json):\n"
        f"    {written}\n"
    )
    assert reverted(source).splitlines()[-1] == f"    {plain}"


def test_a_consume_span_block_becomes_its_body():
    assert reverted("""
        from service.tracekit import consume_span

        async def run(consumer, handle):
            async for msg in consumer:
                with consume_span(msg, group_id="g"):
                    await handle(msg)
                await consumer.commit()
    """).splitlines()[-3:] == [
        "    async for msg in consumer:",
        "        await handle(msg)",
        "        await consumer.commit()",
    ]


def test_a_restore_from_queue_block_becomes_its_body():
    assert reverted("""
        import json

        from service.tracekit import restore_from_queue

        async def drain(redis, show):
            while True:
                _, raw = await redis.blpop("inbox")
                item = json.loads(raw)
                with restore_from_queue(item):
                    await show(item)
                await redis.incr("shown")
    """).splitlines()[-5:] == [
        "    while True:",
        '        _, raw = await redis.blpop("inbox")',
        "        item = json.loads(raw)",
        "        await show(item)",
        '        await redis.incr("shown")',
    ]


def test_a_consume_batch_loop_iterates_the_plain_records_with_a_null_scope():
    code = reverted("""
        from service.tracekit import consume_batch

        async def run(consumer, handle):
            batch = await consumer.getmany()
            for record, scope in consume_batch(batch):
                with scope:
                    await handle(record)
    """)
    assert "consume_batch" not in code.split("import consume_batch")[1]
    assert "nullcontext()) for records in (batch.values()" in code


def test_copy_context_run_is_dropped_from_a_submission():
    assert reverted("""
        import contextvars

        def run(pool, work):
            pool.submit(contextvars.copy_context().run, work, 1)
    """).splitlines()[-1] == "    pool.submit(work, 1)"


def test_a_detach_in_a_finally_moves_after_the_block():
    assert reverted("""
        from opentelemetry import context

        def handle(ctx, message):
            token = context.attach(ctx)
            try:
                process(message)
            finally:
                context.detach(token)
            return message
    """).splitlines()[-4:] == [
        "    token = context.attach(ctx)",
        "    process(message)",
        "    context.detach(token)",
        "    return message",
    ]


def test_only_the_chosen_token_of_nested_attaches_is_reverted():
    code = reverted("""
        from opentelemetry.context import attach, detach

        def restore(parent_ctx, baggage_ctx, item):
            parent_token = attach(parent_ctx)
            try:
                baggage_token = attach(baggage_ctx)
                try:
                    work(item)
                finally:
                    detach(baggage_token)
            finally:
                detach(parent_token)
    """, index=1)
    assert code.splitlines()[-7:] == [
        "    parent_token = attach(parent_ctx)",
        "    try:",
        "        baggage_token = attach(baggage_ctx)",
        "        work(item)",
        "        detach(baggage_token)",
        "    finally:",
        "        detach(parent_token)",
    ]


def test_a_thread_subclass_loses_its_start_capture():
    code = reverted("""
        import contextvars, functools, threading

        class Poller(threading.Thread):
            def start(self):
                self.run = functools.partial(contextvars.copy_context().run, self.run)
                super().start()
    """)
    assert "copy_context" not in code and "        pass\n        super().start()" in code
