"""Transactional outbox on Redis: an event is stored in the same transaction as the state
change it announces, and the relay publishes it afterwards, so neither is lost without the other.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from opentelemetry import trace
from opentelemetry.propagate import extract
from redis.asyncio import Redis

from .config import Settings
from .events import EventEnvelope
from .kafka_bus import KafkaBus

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


async def publish_to_outbox(
    redis: Redis,
    settings: Settings,
    topic: str,
    envelope: EventEnvelope,
    *,
    key: str | None = None,
    state: tuple[str, dict[str, Any]] | None = None,
) -> None:
    """Queue ``envelope`` for publication, writing ``state`` (a hash key and fields) atomically."""
    entry = {"topic": topic, "key": key, "envelope": envelope.model_dump_json()}
    async with redis.pipeline(transaction=True) as pipe:
        if state is not None:
            state_key, fields = state
            pipe.hset(state_key, mapping=fields)
        pipe.lpush(settings.key("outbox"), json.dumps(entry))
        await pipe.execute()


class OutboxRelay:
    """Moves outbox entries to Kafka, oldest first."""

    def __init__(self, redis: Redis, bus: KafkaBus, settings: Settings) -> None:
        self._redis = redis
        self._bus = bus
        self._outbox_key = settings.key("outbox")

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            item = await self._redis.brpop([self._outbox_key], timeout=1)
            if item is None:
                continue
            try:
                await self._relay(item[1])
            except Exception:
                logger.exception("outbox relay failed; the entry goes back to the head")
                # RPUSH puts it back at the consuming end, so ordering survives an outage.
                await self._redis.rpush(self._outbox_key, item[1])
                await asyncio.sleep(1)

    async def _relay(self, raw: str) -> None:
        entry = json.loads(raw)
        envelope = EventEnvelope.model_validate_json(entry["envelope"])
        # The relay runs long after the request; the stored metadata is the event's origin.
        origin = extract(envelope.metadata or {})
        with tracer.start_as_current_span(
            "outbox.relay",
            context=origin,
            attributes={"correlation_id": envelope.correlation_id, "outbox.topic": entry["topic"]},
        ):
            await self._bus.publish(entry["topic"], envelope, key=entry["key"])
