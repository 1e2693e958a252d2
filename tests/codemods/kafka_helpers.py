"""What the Kafka codemods' execution tests share: a fresh topic, span ancestry, the codemod run."""

from __future__ import annotations

import importlib

# Bounds a hung broker, not a performance expectation.
RECEIVE_TIMEOUT = 60


async def first_record(bootstrap: str, topic: str):
    """The first record of ``topic`` (partition 0), read by a consumer of its own."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.seek_to_beginning()
        return await asyncio.wait_for(consumer.getone(), RECEIVE_TIMEOUT)
    finally:
        await consumer.stop()


async def new_topic(bootstrap: str, prefix: str) -> str:
    """A fresh single-partition topic, so a consumer from the beginning reads only this test."""
    return await kit_testing().new_topic(bootstrap, prefix)


def kit_testing():
    """The rendered kit's test support (tests/conftest.py renders the kit as ``kitpkg``)."""
    return importlib.import_module("kitpkg.tracekit.testing")


def ancestors(span, spans) -> list:
    """The spans above ``span``, nearest first, as far as the finished spans reach."""
    by_id = {s.context.span_id: s for s in spans}
    chain = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        found = by_id[parent.span_id]
        chain.append(found)
        parent = found.parent
    return chain


def descends_from(span, ancestor, spans) -> bool:
    """Same trace, and ``ancestor`` on the parent chain of ``span``."""
    return span.context.trace_id == ancestor.context.trace_id and any(
        above.context.span_id == ancestor.context.span_id for above in ancestors(span, spans)
    )
