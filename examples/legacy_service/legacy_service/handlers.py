"""Kafka event handlers: each parses the envelope of one record and does the work it announces."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from aiokafka import ConsumerRecord
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import SpanKind, Tracer, get_current_span
from redis.asyncio import Redis

from .analysis import analyse_text
from .config import Settings
from .events import ESSAY_ANALYSED, EssayAnalysedV1, EssaySubmittedV1, EventEnvelope
from .outbox import publish_to_outbox

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandlerDeps:
    redis: Redis
    settings: Settings
    pool: ThreadPoolExecutor


async def handle_essay_submitted(
    msg: ConsumerRecord, deps: HandlerDeps, tracer: Tracer | None = None
) -> None:
    """Analyse a submitted essay and announce the result through the outbox."""
    envelope = EventEnvelope.model_validate_json(msg.value)
    if envelope.metadata and tracer:  # planted: envelope-restore:essay-submitted
        ctx = extract(envelope.metadata)
        with tracer.start_as_current_span(
            envelope.event_type,
            context=ctx,
            kind=SpanKind.CONSUMER,
            attributes={"correlation_id": envelope.correlation_id},
        ):
            await _analyse(envelope, deps)
    else:
        await _analyse(envelope, deps)


async def _analyse(envelope: EventEnvelope, deps: HandlerDeps) -> None:
    submitted = EssaySubmittedV1.model_validate(envelope.data)
    loop = asyncio.get_running_loop()
    stats = await loop.run_in_executor(deps.pool, analyse_text, submitted.text)  # planted: thread-context:handler-analyse
    analysed = EssayAnalysedV1(
        essay_id=submitted.essay_id, course_code=submitted.course_code, **asdict(stats)
    )
    result = EventEnvelope(
        event_type=ESSAY_ANALYSED,
        correlation_id=envelope.correlation_id,
        data=analysed.model_dump(),
        metadata={},
    )
    if get_current_span():  # planted: envelope-inject:outbox-guard
        inject(result.metadata)
    essay_key = deps.settings.key("essay", submitted.essay_id)
    await publish_to_outbox(
        deps.redis,
        deps.settings,
        deps.settings.topic(ESSAY_ANALYSED),
        result,
        key=submitted.essay_id,
        state=(essay_key, {"status": "analysed", "word_count": stats.word_count}),
    )
    logger.info("essay %s analysed: %d words", submitted.essay_id, stats.word_count)


async def project_essay_analysed(
    record: ConsumerRecord, deps: HandlerDeps, tracer: Tracer | None = None
) -> None:
    """Add an analysed essay to its course's running statistics."""
    envelope = EventEnvelope.model_validate_json(record.value)
    if envelope.metadata and tracer:  # planted: envelope-restore:course-projection
        with tracer.start_as_current_span(
            envelope.event_type,
            context=extract(envelope.metadata),
            kind=SpanKind.CONSUMER,
            attributes={"correlation_id": envelope.correlation_id},
        ):
            await _add_to_course_stats(envelope, deps)
    else:
        await _add_to_course_stats(envelope, deps)


async def _add_to_course_stats(envelope: EventEnvelope, deps: HandlerDeps) -> None:
    analysed = EssayAnalysedV1.model_validate(envelope.data)
    seen_key = deps.settings.key("projected", str(envelope.event_id))
    if not await deps.redis.set(seen_key, 1, nx=True, ex=7 * 24 * 3600):
        return  # a redelivery: this event is already counted
    stats_key = deps.settings.key("course", analysed.course_code, "stats")
    async with deps.redis.pipeline(transaction=True) as pipe:
        pipe.hincrby(stats_key, "essays", 1)
        pipe.hincrby(stats_key, "words", analysed.word_count)
        await pipe.execute()
