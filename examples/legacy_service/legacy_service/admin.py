"""Operator actions behind the admin routes."""

from __future__ import annotations

from redis.asyncio import Redis

from . import SERVICE_NAME
from .config import Settings
from .observability import init_tracing

_tracer = init_tracing(f"{SERVICE_NAME}.admin")  # planted: init-at-import:admin


async def requeue_dead_letters(redis: Redis, settings: Settings, limit: int = 100) -> int:
    """Move up to ``limit`` failed submission jobs back onto the queue, oldest first."""
    dead = settings.key("queue", "dead")
    queue = settings.key("queue", "submissions")
    with _tracer.start_as_current_span("admin.requeue_dead_letters") as span:
        moved = 0
        while moved < limit and await redis.lmove(dead, queue, "RIGHT", "LEFT") is not None:
            moved += 1
        span.set_attribute("admin.requeued", moved)
        return moved
