"""The example run end to end over Tansu and Redis.

Untraced, it works and its trace breaks exactly where mistakes were planted: the control that
shows ``assert_unbroken`` can fail. Instrumented by hand as retrofit should do it, the trace is
unbroken: the control that shows ``assert_unbroken`` can pass on a real run.
"""

import pytest

from example.e2e import (
    ANALYSED,
    CLIENT,
    CONTENT_SERVICE,
    DOWNSTREAM,
    MISSING,
    OTHER_TRACE,
    SUBMITTED,
    WHOLE_FLOW,
    assert_unbroken,
    broken_hops,
    run_flow,
)
from example.service import EXAMPLE_DIR, copy_service, hand_retrofit

# hop -> how it breaks, and the planted sites that break it
EXPECTED_BREAKS = {
    CONTENT_SERVICE: OTHER_TRACE,  # http-inject: no traceparent on the httpx call
    "essay.normalise_text": OTHER_TRACE,  # thread-context: executor.submit
    f"send {SUBMITTED}": MISSING,  # kafka-produce: the bus sends outside any span
    f"process {SUBMITTED}": MISSING,  # kafka-consume: `async for msg in consumer`
    SUBMITTED: MISSING,  # envelope-inject (metadata None) + envelope-restore (guard)
    "essay.analyse_text": OTHER_TRACE,  # thread-context: run_in_executor
    f"send {ANALYSED}": MISSING,  # kafka-produce, from the outbox relay
    DOWNSTREAM: OTHER_TRACE,  # the handler had no span to inject into the outbox event
    f"process {ANALYSED}": MISSING,  # kafka-consume: the getmany loop
    ANALYSED: MISSING,  # envelope-restore: the projection's guard
}


@pytest.fixture(scope="module")
def legacy_flow(tansu, redis_url):
    return run_flow(EXAMPLE_DIR, kafka_bootstrap=tansu, redis_url=redis_url)


@pytest.fixture(scope="module")
def instrumented_flow(tansu, redis_url, tmp_path_factory):
    service = hand_retrofit(copy_service(tmp_path_factory.mktemp("hand") / "legacy_service"))
    return run_flow(service, kafka_bootstrap=tansu, redis_url=redis_url)


def _trace_id(traceparent: str) -> str:
    return traceparent.split("-")[1]


@pytest.mark.slow
def test_the_essay_goes_the_whole_way(legacy_flow):
    assert legacy_flow.response_status == 202
    assert legacy_flow.essay["status"] == "analysed"
    assert legacy_flow.course_stats["essays"] == 1
    assert legacy_flow.downstream_envelope["event_type"] == ANALYSED


@pytest.mark.slow
def test_the_trace_breaks_at_every_planted_hop_and_nowhere_else(legacy_flow):
    breaks = broken_hops(legacy_flow.spans)

    assert WHOLE_FLOW in breaks
    assert {hop: why for hop, why in breaks.items() if hop != WHOLE_FLOW} == EXPECTED_BREAKS


@pytest.mark.slow
def test_the_breaks_are_visible_on_the_wire(legacy_flow):
    spans = legacy_flow.spans

    # the hops that were done by hand hold: the request joins the client, the queue the request
    assert spans.descends_from(spans.one("api.submit_essay"), spans.one("e2e.client"))
    assert spans.descends_from(spans.one("queue_processing"), spans.one("api.submit_essay"))
    # the ones that were not leave nothing behind
    assert "traceparent" not in legacy_flow.content_service_headers
    assert legacy_flow.downstream_envelope["metadata"] == {}


@pytest.mark.slow
def test_assert_unbroken_fails_on_the_untraced_example(legacy_flow):
    with pytest.raises(AssertionError, match="the trace is broken at"):
        assert_unbroken(legacy_flow.spans)


@pytest.mark.slow
def test_instrumented_by_hand_the_trace_is_unbroken(instrumented_flow):
    assert_unbroken(instrumented_flow.spans)


@pytest.mark.slow
def test_instrumented_by_hand_the_context_crosses_http_and_the_outbox(instrumented_flow):
    client = instrumented_flow.spans.one(CLIENT)
    handler = instrumented_flow.spans.one(SUBMITTED)

    sent = instrumented_flow.content_service_headers["traceparent"]
    downstream = instrumented_flow.downstream_envelope["metadata"]["traceparent"]
    assert _trace_id(sent) == client.trace_id
    assert (_trace_id(downstream), downstream.split("-")[2]) == (client.trace_id, handler.span_id)
    assert instrumented_flow.course_stats["essays"] == 1
