"""The Quart app: HTTP API plus the Kafka consumers that run beside it."""

from __future__ import annotations

import asyncio
from functools import partial

from opentelemetry import trace
from quart import Quart

from . import SERVICE_NAME, api
from .config import Settings
from .consumer import CourseStatsProjection, EventConsumer
from .events import ESSAY_ANALYSED, ESSAY_SUBMITTED
from .handlers import HandlerDeps, handle_essay_submitted, project_essay_analysed
from .logging_setup import configure_logging
from .observability import init_tracing
from .services import build_services

init_tracing(SERVICE_NAME)  # planted: bootstrap:app-import


def create_app(settings: Settings | None = None) -> Quart:
    settings = settings or Settings.from_env()
    app = Quart(__name__)
    app.register_blueprint(api.bp)
    consumer_tasks: list[asyncio.Task[None]] = []

    @app.before_serving
    async def start_services() -> None:
        configure_logging()
        services = build_services(settings)
        app.extensions["legacy_service"] = services
        deps = HandlerDeps(redis=services.redis, settings=settings, pool=services.pool)
        tracer = trace.get_tracer("legacy_service.handlers")
        consumer = EventConsumer(
            settings,
            {settings.topic(ESSAY_SUBMITTED): partial(handle_essay_submitted, deps=deps, tracer=tracer)},
        )
        projection = CourseStatsProjection(
            settings,
            settings.topic(ESSAY_ANALYSED),
            partial(project_essay_analysed, deps=deps, tracer=tracer),
        )
        consumer_tasks.append(asyncio.create_task(consumer.run()))
        consumer_tasks.append(asyncio.create_task(projection.run()))

    @app.after_serving
    async def stop_services() -> None:
        for task in consumer_tasks:
            task.cancel()
        await asyncio.gather(*consumer_tasks, return_exceptions=True)
        consumer_tasks.clear()
        await app.extensions.pop("legacy_service").aclose()

    return app
