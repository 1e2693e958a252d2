"""HTTP API: essays are accepted here and prepared asynchronously."""

from __future__ import annotations

import asyncio
import uuid

from opentelemetry import baggage, context, trace
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, Field, ValidationError
from quart import Blueprint, Response, abort, current_app, g, request
from redis.asyncio import Redis

from . import admin
from .config import Settings
from .services import Services

bp = Blueprint("essays", __name__)
tracer = trace.get_tracer(__name__)


class SubmissionRequest(BaseModel):
    student_id: str = Field(min_length=1)
    course_code: str = Field(min_length=1)
    text: str = Field(min_length=1)


def _services() -> Services:
    return current_app.extensions["legacy_service"]


@bp.before_app_request
async def attach_incoming_trace_context() -> None:
    ctx = extract(request.headers)
    user_id = request.headers.get("X-User-ID")
    if user_id:
        ctx = baggage.set_baggage("user_id", user_id, context=ctx)  # planted: baggage-cardinality:user-id
    g.otel_token = context.attach(ctx)  # planted: hook-attach:before-request


@bp.after_app_request
async def detach_incoming_trace_context(response: Response) -> Response:
    token = g.pop("otel_token", None)
    if token is not None:
        context.detach(token)
    return response


@bp.post("/v1/essays")
async def submit_essay() -> tuple[dict[str, str], int]:
    services = _services()
    correlation_id = request.headers.get("X-Correlation-ID") or str(uuid.uuid4())
    with tracer.start_as_current_span(
        "api.submit_essay", kind=SpanKind.SERVER, attributes={"correlation_id": correlation_id}
    ) as span:
        try:
            submission = SubmissionRequest.model_validate(await request.get_json())
        except ValidationError as exc:
            return {"error": "invalid submission", "detail": exc.errors()[0]["msg"]}, 400
        essay_id = str(uuid.uuid4())
        span.set_attribute("essay.id", essay_id)
        content_id = await services.content.store(submission.text, correlation_id=correlation_id)
        await services.redis.hset(
            services.settings.key("essay", essay_id),
            mapping={
                "status": "submitted",
                "student_id": submission.student_id,
                "course_code": submission.course_code,
                "content_id": content_id,
            },
        )
        await services.queue.enqueue(
            {"essay_id": essay_id, "content_id": content_id, **submission.model_dump()},
            correlation_id=correlation_id,
        )
        asyncio.create_task(count_submission(services.redis, services.settings, submission.course_code))  # planted: task-outlives-span:submission-metric
    return {"essay_id": essay_id, "status": "submitted", "correlation_id": correlation_id}, 202


async def count_submission(redis: Redis, settings: Settings, course_code: str) -> None:
    with tracer.start_as_current_span("metrics.count_submission"):
        await redis.hincrby(settings.key("metrics", "submissions"), course_code, 1)


@bp.get("/v1/essays/<essay_id>")
async def get_essay(essay_id: str) -> dict[str, str]:
    services = _services()
    with tracer.start_as_current_span("api.get_essay", kind=SpanKind.SERVER):
        span = tracer.start_span("essay_store.load")  # planted: span-not-ended:load-essay
        record = await services.redis.hgetall(services.settings.key("essay", essay_id))
        if not record:
            abort(404)
        span.end()
    return {"essay_id": essay_id, **record}


@bp.get("/v1/courses/<course_code>/stats")
async def get_course_stats(course_code: str) -> dict[str, int | str]:
    services = _services()
    with tracer.start_as_current_span("api.get_course_stats", kind=SpanKind.SERVER):
        stats = await services.redis.hgetall(services.settings.key("course", course_code, "stats"))
    return {
        "course_code": course_code,
        "essays": int(stats.get("essays", 0)),
        "words": int(stats.get("words", 0)),
    }


@bp.post("/admin/requeue-dead")
async def requeue_dead() -> dict[str, int]:
    services = _services()
    return {"requeued": await admin.requeue_dead_letters(services.redis, services.settings)}


@bp.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
