"""The worker process: prepares queued submissions and relays the outbox to Kafka.

Run it with ``python -m legacy_service.worker`` (or the ``legacy-service-worker`` script).
"""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor

from redis.asyncio import Redis

from . import SERVICE_NAME
from .config import Settings
from .kafka_bus import KafkaBus
from .logging_setup import configure_logging
from .outbox import OutboxRelay
from .submission_queue import QueueWorker


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Work until ``stop`` is set, then finish the current job and close every client."""
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    bus = KafkaBus(settings.kafka_bootstrap_servers, client_id=f"{SERVICE_NAME}-worker")
    pool = ThreadPoolExecutor(settings.analysis_threads, thread_name_prefix="normalise")
    await bus.start()
    try:
        await asyncio.gather(
            QueueWorker(redis, bus, settings, pool).run(stop),
            OutboxRelay(redis, bus, settings).run(stop),
        )
    finally:
        await bus.stop()
        await redis.aclose()
        pool.shutdown(wait=True)


async def _serve_until_signalled(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await serve(settings, stop)


def main() -> None:  # planted: bootstrap:worker-main
    configure_logging()
    asyncio.run(_serve_until_signalled(Settings.from_env()))


if __name__ == "__main__":
    main()
