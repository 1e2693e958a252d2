"""broken_hops on hand-made span lists: each way a hop can break is named as such."""

import itertools

import pytest

from example.e2e import (
    ANALYSED,
    CAUSE_BROKEN,
    CLIENT,
    DESTINATION,
    HOPS,
    NOT_UNDER,
    SUBMITTED,
    WHOLE_FLOW,
    SpanRecord,
    Spans,
    assert_unbroken,
    broken_hops,
)

TRACE = "a" * 32
_ids = (format(n, "016x") for n in itertools.count(1))


def _span(label: str, parent: SpanRecord | None, trace_id: str = TRACE) -> SpanRecord:
    kind, attributes = "INTERNAL", {}
    for prefix, span_kind in (("send ", "PRODUCER"), ("process ", "CONSUMER")):
        if label.startswith(prefix):
            kind, attributes = span_kind, {DESTINATION: "run-1." + label.removeprefix(prefix)}
    return SpanRecord(
        name=label,
        kind=kind,
        trace_id=trace_id,
        span_id=next(_ids),
        parent_id=parent.span_id if parent else None,
        attributes=attributes,
    )


def unbroken_flow() -> dict[str, SpanRecord]:
    """One span per hop, each a child of the hop it names as its cause."""
    made: dict[str, SpanRecord] = {}
    for hop in HOPS:
        made[hop.label] = _span(hop.label, made[hop.under] if hop.under else None)
    return made


def test_a_flow_with_every_hop_under_its_cause_is_unbroken():
    assert_unbroken(Spans(list(unbroken_flow().values())))


def test_a_hop_under_the_wrong_span_of_the_same_trace_is_not_under_its_cause():
    flow = unbroken_flow()
    flow["essay.analyse_text"] = _span("essay.analyse_text", flow["queue_processing"])

    assert broken_hops(Spans(list(flow.values()))) == {"essay.analyse_text": NOT_UNDER}


def test_hops_below_a_missing_span_are_reported_as_such():
    flow = unbroken_flow()
    del flow[SUBMITTED]
    for label in ("essay.analyse_text", f"send {ANALYSED}", "e2e.downstream_event"):
        flow[label] = _span(label, flow["queue_processing"])

    breaks = broken_hops(Spans(list(flow.values())))

    assert breaks[SUBMITTED] == "missing"
    assert breaks["essay.analyse_text"] == CAUSE_BROKEN


def test_a_span_whose_parent_was_never_recorded_breaks_the_whole_flow():
    flow = unbroken_flow()
    stray = SpanRecord("late.work", "INTERNAL", TRACE, next(_ids), "f" * 16, {})

    breaks = broken_hops(Spans([*flow.values(), stray]))

    assert list(breaks) == [WHOLE_FLOW]
    assert "1 with a parent that was never recorded" in breaks[WHOLE_FLOW]


def test_without_the_client_span_nothing_else_can_be_judged():
    flow = unbroken_flow()
    del flow[CLIENT]

    with pytest.raises(AssertionError, match=CLIENT):
        assert_unbroken(Spans(list(flow.values())))
