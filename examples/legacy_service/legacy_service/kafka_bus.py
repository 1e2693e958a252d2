"""The one way this service writes to Kafka."""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaProducer

from .events import EventEnvelope

logger = logging.getLogger(__name__)


class KafkaBus:
    def __init__(self, bootstrap_servers: str, client_id: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers, client_id=self._client_id, acks="all"
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(
        self,
        topic: str,
        envelope: EventEnvelope,
        key: str | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Publish the envelope as JSON and wait for the broker to acknowledge it."""
        if self._producer is None:
            raise RuntimeError("KafkaBus.publish called before start()")
        value = envelope.model_dump_json().encode()
        await self._producer.send_and_wait(topic, value, key=key.encode() if key else None, headers=headers)  # planted: kafka-produce:bus-publish
        logger.info("published %s to %s", envelope.event_type, topic)
