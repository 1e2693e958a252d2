"""Blocking text work; callers run it on a thread pool so the event loop stays responsive."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from opentelemetry import trace

tracer = trace.get_tracer(__name__)

_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
LONG_WORD = 12


@dataclass(frozen=True)
class TextStats:
    word_count: int
    sentence_count: int
    average_word_length: float
    long_words: list[str]


def normalise_text(text: str) -> str:
    """NFC-normalise and collapse whitespace, as the content store keeps it."""
    with tracer.start_as_current_span("essay.normalise_text") as span:
        normalised = " ".join(unicodedata.normalize("NFC", text).split())
        span.set_attribute("essay.characters", len(normalised))
        return normalised


def analyse_text(text: str) -> TextStats:
    with tracer.start_as_current_span("essay.analyse_text") as span:
        words = _WORD.findall(text)
        sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
        span.set_attribute("essay.word_count", len(words))
        return TextStats(
            word_count=len(words),
            sentence_count=len(sentences),
            average_word_length=round(sum(map(len, words)) / len(words), 2) if words else 0.0,
            long_words=sorted({w.lower() for w in words if len(w) >= LONG_WORD}),
        )
