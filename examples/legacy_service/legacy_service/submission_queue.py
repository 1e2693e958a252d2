"""The preparation queue between the API and Kafka: the API answers at once, the worker
normalises the text and announces the essay to the rest of the platform.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry import context, trace
from opentelemetry.propagate import extract, inject
from redis.asyncio import Redis

from .analysis import normalise_text
from .config import Settings
from .events import ESSAY_SUBMITTED, EssaySubmittedV1, EventEnvelope
from .kafka_bus import KafkaBus

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


class SubmissionQueue:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._key = settings.key("queue", "submissions")

    async def enqueue(self, submission: dict[str, Any], *, correlation_id: str) -> None:
        carrier: dict[str, str] = {}
        inject(carrier)
        job = {**submission, "correlation_id": correlation_id, "traceparent": carrier.get("traceparent")}
        await self._redis.lpush(self._key, json.dumps(job))


class QueueWorker:
    def __init__(
        self, redis: Redis, bus: KafkaBus, settings: Settings, pool: ThreadPoolExecutor
    ) -> None:
        self._redis = redis
        self._bus = bus
        self._settings = settings
        self._pool = pool
        self._key = settings.key("queue", "submissions")
        self._dead_key = settings.key("queue", "dead")

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            item = await self._redis.brpop([self._key], timeout=1)
            if item is None:
                continue
            try:
                await self._process(item[1])
            except Exception:
                logger.exception("submission job failed; moved to the dead-letter list")
                await self._redis.lpush(self._dead_key, item[1])

    async def _process(self, raw: str) -> None:
        job = json.loads(raw)
        carrier = {"traceparent": job["traceparent"]} if job.get("traceparent") else {}
        token = context.attach(extract(carrier))  # planted: token-finally:queue-worker
        with tracer.start_as_current_span(
            "queue_processing",
            attributes={"correlation_id": job["correlation_id"], "essay.id": job["essay_id"]},
        ):
            await self._announce(job)
        context.detach(token)

    async def _announce(self, job: dict[str, Any]) -> None:
        future = self._pool.submit(normalise_text, job["text"])  # planted: thread-context:queue-normalise
        text = await asyncio.wrap_future(future)
        submitted = EssaySubmittedV1(
            essay_id=job["essay_id"],
            student_id=job["student_id"],
            course_code=job["course_code"],
            content_id=job["content_id"],
            text=text,
        )
        envelope = EventEnvelope(
            event_type=ESSAY_SUBMITTED,
            correlation_id=job["correlation_id"],
            data=submitted.model_dump(),
        )
        await self._bus.publish(  # planted: envelope-inject:queue-publish
            self._settings.topic(ESSAY_SUBMITTED),
            envelope,
            key=job["essay_id"],
            headers=[("correlation_id", job["correlation_id"].encode())],
        )
