"""Event contracts: the envelope every Kafka message carries, and the payloads of this service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from . import SERVICE_NAME

ESSAY_SUBMITTED = "huleedu.essay.submitted.v1"
ESSAY_ANALYSED = "huleedu.essay.analysed.v1"


class EventEnvelope(BaseModel):
    """The platform-wide wrapper of every event; ``metadata`` carries cross-cutting context."""

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: str
    event_timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source_service: str = SERVICE_NAME
    schema_version: int = 1
    correlation_id: str
    data: dict[str, Any]
    metadata: dict[str, Any] | None = None


class EssaySubmittedV1(BaseModel):
    essay_id: str
    student_id: str
    course_code: str
    content_id: str
    text: str


class EssayAnalysedV1(BaseModel):
    essay_id: str
    course_code: str
    word_count: int
    sentence_count: int
    average_word_length: float
    long_words: list[str]
