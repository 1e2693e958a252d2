"""Settings read from the environment once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_consumer_group: str = "legacy_service"
    # Lets several deployments (or test runs) share one broker without sharing topics.
    kafka_topic_prefix: str = ""
    redis_url: str = "redis://localhost:6379/0"
    redis_key_prefix: str = "legacy_service:"
    content_service_url: str = "http://content-service:8000"
    analysis_threads: int = 4
    trace_sample_ratio: float = 1.0

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        defaults = cls()
        return cls(
            kafka_bootstrap_servers=env.get(
                "KAFKA_BOOTSTRAP_SERVERS", defaults.kafka_bootstrap_servers
            ),
            kafka_consumer_group=env.get("KAFKA_CONSUMER_GROUP", defaults.kafka_consumer_group),
            kafka_topic_prefix=env.get("KAFKA_TOPIC_PREFIX", defaults.kafka_topic_prefix),
            redis_url=env.get("REDIS_URL", defaults.redis_url),
            redis_key_prefix=env.get("REDIS_KEY_PREFIX", defaults.redis_key_prefix),
            content_service_url=env.get("CONTENT_SERVICE_URL", defaults.content_service_url),
            analysis_threads=int(env.get("ANALYSIS_THREADS", defaults.analysis_threads)),
            trace_sample_ratio=float(env.get("TRACE_SAMPLE_RATIO", defaults.trace_sample_ratio)),
        )

    def topic(self, event_type: str) -> str:
        """Topics are named after the event type they carry."""
        return f"{self.kafka_topic_prefix}{event_type}"

    def key(self, *parts: str) -> str:
        return self.redis_key_prefix + ":".join(parts)
