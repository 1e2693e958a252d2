from legacy_service.events import ESSAY_SUBMITTED, EventEnvelope


def test_envelope_round_trips_through_json_without_metadata():
    envelope = EventEnvelope(event_type=ESSAY_SUBMITTED, correlation_id="c-1", data={"a": 1})

    parsed = EventEnvelope.model_validate_json(envelope.model_dump_json())

    assert parsed == envelope
    assert parsed.metadata is None
    assert parsed.source_service == "legacy_service"


def test_envelope_keeps_metadata_it_was_given():
    envelope = EventEnvelope(
        event_type=ESSAY_SUBMITTED, correlation_id="c-1", data={}, metadata={"k": "v"}
    )

    assert EventEnvelope.model_validate_json(envelope.model_dump_json()).metadata == {"k": "v"}
