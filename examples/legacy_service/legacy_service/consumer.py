"""Kafka consumer loops of the app, started from ``before_serving``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from opentelemetry.propagate import extract

from .config import Settings

logger = logging.getLogger(__name__)

Handler = Callable[[ConsumerRecord], Awaitable[None]]


class EventConsumer:
    """Dispatches every record of the subscribed topics to the handler of its topic."""

    def __init__(self, settings: Settings, handlers: Mapping[str, Handler]) -> None:
        self._settings = settings
        self._handlers = dict(handlers)

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            *self._handlers,
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            group_id=self._settings.kafka_consumer_group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            async for msg in consumer:  # planted: kafka-consume:event-loop
                try:
                    await self._handlers[msg.topic](msg)
                except Exception:
                    logger.exception("handler of %s failed at offset %d", msg.topic, msg.offset)
                await consumer.commit()
        finally:
            await consumer.stop()


class CourseStatsProjection:
    """Folds analysed essays into per-course statistics, a batch at a time."""

    def __init__(self, settings: Settings, topic: str, project: Handler) -> None:
        self._settings = settings
        self._topic = topic
        self._project = project

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            self._topic,
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            group_id=f"{self._settings.kafka_consumer_group}.course-stats",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=1000, max_records=100)  # planted: kafka-consume:course-stats-batch
                for records in batch.values():
                    for record in records:
                        extract({key: value.decode() for key, value in record.headers})  # planted: extract-discarded:course-stats
                        await self._project(record)
                if batch:
                    await consumer.commit()
        finally:
            await consumer.stop()
