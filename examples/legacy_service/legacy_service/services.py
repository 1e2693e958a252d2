"""The clients one app process shares between requests and consumers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from .config import Settings
from .content_client import ContentServiceClient
from .submission_queue import SubmissionQueue


@dataclass
class Services:
    settings: Settings
    redis: Redis
    http: httpx.AsyncClient
    pool: ThreadPoolExecutor
    content: ContentServiceClient
    queue: SubmissionQueue

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.redis.aclose()
        self.pool.shutdown(wait=True)


def build_services(
    settings: Settings, content_transport: httpx.AsyncBaseTransport | None = None
) -> Services:
    """Create the clients; ``content_transport`` lets tests answer for the content service."""
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    http = httpx.AsyncClient(
        base_url=settings.content_service_url, timeout=10.0, transport=content_transport
    )
    return Services(
        settings=settings,
        redis=redis,
        http=http,
        pool=ThreadPoolExecutor(settings.analysis_threads, thread_name_prefix="analysis"),
        content=ContentServiceClient(http),
        queue=SubmissionQueue(redis, settings),
    )
