"""The generated tests hold on real code: they end, they judge only messages, they skip (with
the reason) what this environment cannot run, and they fail once the tracing is taken away.

Every module below is trimmed from a HuleEdu service on which the generated tests hung, failed
on a correct retrofit, or skipped for a reason the generator could have avoided.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scaffold.kit import render_kit
from scaffold.testgen import generate_tests
from tests.testgen.repos import run_pytest

PYPROJECT = """\
[project]
name = "svc"
version = "0"

[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"

[tool.scaffold]
helper-module = "helpers.observability"
"""
HELPER = """\
from svc.tracekit import inject_trace_context as inject_trace_context
from svc.tracekit import use_trace_context as use_trace_context
"""
ENUMS = """\
from enum import Enum


class ProcessingEvent(str, Enum):
    BATCH_REGISTERED = "batch.registered"


def topic_name(event: ProcessingEvent) -> str:
    return f"huleedu.{event.value}.v1"
"""
EVENTS = """\
from pydantic import BaseModel


class EventEnvelope(BaseModel):
    event_type: str
    correlation_id: str
    data: dict
    metadata: dict | None = None


class BatchRegistered(BaseModel):
    batch_id: str
"""
# identity_service/kafka_consumer.py: `async for` inside `while not self.should_stop`, whose
# `except` sleeps and retries; the generated test used to spin in the `while` for ever.
FLAGGED_LOOP = """\
import asyncio

from svc.tracekit import consume_span


class KafkaConnectionError(Exception):
    pass


class IdentityKafkaConsumer:
    def __init__(self) -> None:
        self.consumer = None
        self.should_stop = False

    async def _process_identity_event_idempotently(self, msg) -> bool:
        return True

    async def _process_messages(self) -> None:
        if not self.consumer:
            return
        while not self.should_stop:
            try:
                async for msg in self.consumer:
                    with consume_span(msg, group_id="identity_service_internal_consumer"):
                        if self.should_stop:
                            break
                        try:
                            result = await self._process_identity_event_idempotently(msg)
                            if result:
                                await self.consumer.commit()
                        except Exception as e:
                            print(f"Error processing identity event: {e}")
            except KafkaConnectionError:
                if self.should_stop:
                    break
                await asyncio.sleep(5)
"""
# nlp_service/kafka_consumer.py: `while True` over getmany(); `except Exception` sleeps.
RETRY_LOOP = """\
import asyncio

from svc.tracekit import consume_span


class NlpKafkaConsumer:
    def __init__(self) -> None:
        self.consumer = None

    async def _handle(self, msg) -> None:
        return None

    async def _process_messages(self) -> None:
        while True:
            try:
                batch = await self.consumer.getmany(timeout_ms=1000)
                if not batch:
                    await asyncio.sleep(0.1)
                    continue
                for tp, messages in batch.items():
                    for msg in messages:
                        with consume_span(msg, group_id="nlp"):
                            await self._handle(msg)
            except Exception as e:
                print(f"Error in consumer loop: {e}")
                await asyncio.sleep(5)
"""
SWALLOWING_LOOP = RETRY_LOOP.replace("except Exception as e:", "except BaseException as e:")
# batch_orchestrator_service/implementations/event_publisher_impl.py: ProcessingEvent(...)
# reads the envelope's event_type after the injection; it was judged as a message.
PUBLISHER = """\
from typing import Any

from helpers.observability import inject_trace_context
from svc.enums import ProcessingEvent, topic_name
from svc.events import EventEnvelope


class DefaultBatchEventPublisherImpl:
    def __init__(self, outbox_manager: Any) -> None:
        self.outbox_manager = outbox_manager

    async def publish_batch_event(
        self, event_envelope: EventEnvelope, key: str | None = None
    ) -> None:
        if event_envelope.metadata is None:
            event_envelope.metadata = {}
        inject_trace_context(event_envelope.metadata)
        try:
            processing_event = ProcessingEvent(event_envelope.event_type)
            topic = topic_name(processing_event)
        except ValueError:
            topic = event_envelope.event_type
        await self.outbox_manager.publish_to_outbox(
            aggregate_type="batch",
            aggregate_id=key or event_envelope.correlation_id,
            event_type=event_envelope.event_type,
            event_data=event_envelope,
            topic=topic,
        )
"""
# llm_provider_service/implementations/trace_context_manager_impl.py: the span API is called
# with the carrier in a test; the OpenTelemetry module itself was replaced by a recorder.
CONTEXT_MANAGER = """\
from typing import Any, Dict

from opentelemetry import trace

from helpers.observability import inject_trace_context


class TraceContextManagerImpl:
    def capture_trace_context_for_queue(self) -> Dict[str, Any]:
        context: Dict[str, Any] = {}
        inject_trace_context(context)
        current_span = trace.get_current_span()
        if current_span and current_span.is_recording():
            current_span.add_event(
                "trace_context_captured_for_queue",
                {"has_traceparent": "traceparent" in context, "keys": list(context.keys())},
            )
        return context

    def inject_trace_context_into_event(self, event_metadata: Dict[str, Any]) -> None:
        try:
            inject_trace_context(event_metadata)
            current_span = trace.get_current_span()
            if current_span and current_span.is_recording():
                current_span.add_event(
                    "trace_context_injected_into_event",
                    {"has_traceparent": "traceparent" in event_metadata},
                )
        except Exception as e:
            print(f"Failed to inject trace context into event: {e}")
"""
# essay_lifecycle_service/batch_command_handlers.py: the data model is imported inside the
# function; the test looked it up on the module and failed with AttributeError.
LOCAL_IMPORT = """\
from helpers.observability import use_trace_context
from svc.events import EventEnvelope


async def handle(data, correlation_id) -> None:
    return None


async def route_event(envelope: EventEnvelope) -> None:
    from svc.events import BatchRegistered

    data = BatchRegistered.model_validate(envelope.data)
    with use_trace_context(envelope.metadata):
        await handle(data, envelope.correlation_id)
"""
THIRD_PARTY = """\
import not_installed_anywhere  # noqa: F401

from helpers.observability import inject_trace_context


def send(carrier: dict) -> None:
    return None


def publish() -> None:
    carrier: dict = {}
    inject_trace_context(carrier)
    send(carrier)
"""
BROKEN_REPO_IMPORT = THIRD_PARTY.replace("import not_installed_anywhere",
                                         "import svc.not_written_yet")


def make_repo(root: Path, modules: dict[str, str]) -> Path:
    (root / "svc").mkdir(parents=True)
    (root / "svc" / "__init__.py").write_text("")
    render_kit(root / "svc" / "tracekit", package_name="svc")
    (root / "helpers").mkdir()
    (root / "helpers" / "__init__.py").write_text("")
    (root / "helpers" / "observability.py").write_text(HELPER)
    (root / "svc" / "enums.py").write_text(ENUMS)
    (root / "svc" / "events.py").write_text(EVENTS)
    (root / "pyproject.toml").write_text(PYPROJECT)
    for name, source in modules.items():
        (root / "svc" / f"{name}.py").write_text(source)
    return root


def _set_limits(repo: Path, drive: float, test: float) -> None:
    """Change the generated harness's time limits (as a user may) for one scenario."""
    support = repo / "tests" / "tracing" / "tracing_support.py"
    text = support.read_text()
    text = re.sub(r"^DRIVE_SECONDS = .*$", f"DRIVE_SECONDS = {drive}", text, flags=re.M)
    text = re.sub(r"^TEST_SECONDS = .*$", f"TEST_SECONDS = {test}", text, flags=re.M)
    support.write_text(text)


def _outcomes(repo: Path, *extra: str) -> dict[str, str]:
    """The generated tests but the contract (a whole `retrofit --check`), without
    pytest-timeout, skip reasons shown."""
    return run_pytest(repo, "tests/tracing", "-p", "no:timeout", "-rs", "-k",
                      "not test_retrofit_check_finds_nothing_to_change", *extra)


@pytest.mark.parametrize("source", [FLAGGED_LOOP, RETRY_LOOP],
                         ids=["a while-not-should_stop loop", "a while-True retry loop"])
def test_a_driven_consumer_loop_ends_after_its_records(tmp_path, source):
    """No time limit comes to the rescue here (both are far away, pytest-timeout is off): the
    loop ends because the fake consumer stops it after the last record, and both tests pass."""
    repo = make_repo(tmp_path, {"consumer": source})
    generate_tests(repo)
    _set_limits(repo, drive=600, test=600)
    outcomes = _outcomes(repo)
    module = "test_trace_svc_consumer"
    results = {k: v for k, v in outcomes.items() if k.startswith(module)}
    assert len(results) == 2 and set(results.values()) == {"passed"}, outcomes["__output__"]


def test_a_loop_that_swallows_its_cancellation_is_skipped_with_the_reason(tmp_path):
    repo = make_repo(tmp_path, {"consumer": SWALLOWING_LOOP})
    result = generate_tests(repo)
    [case] = [case for module in result.modules for case in module.cases]
    assert case.skip is not None and "catches the cancellation" in case.skip
    assert "stop flag" in case.skip


def test_the_stop_flag_of_a_loop_is_set_by_the_generated_test(tmp_path):
    repo = make_repo(tmp_path, {"consumer": FLAGGED_LOOP})
    generate_tests(repo)
    text = (repo / "tests" / "tracing" / "test_trace_svc_consumer.py").read_text()
    assert "harness.stop_flag(subject, 'should_stop', True)" in text


def test_a_call_that_never_returns_is_cut_off_without_pytest_timeout(tmp_path):
    """A call the test cannot stop (after the records it waits on an Event nobody sets) is
    cut off by the harness's own limit; the test then judges what it saw: the record was
    handled in its trace."""
    source = RETRY_LOOP.replace(
        "            except Exception as e:",
        "                await asyncio.Event().wait()\n            except Exception as e:")
    repo = make_repo(tmp_path, {"consumer": source})
    generate_tests(repo)
    _set_limits(repo, drive=1, test=120)
    outcomes = _outcomes(repo)
    results = {k: v for k, v in outcomes.items() if k.startswith("test_trace_svc_consumer")}
    assert set(results.values()) == {"passed"}, outcomes["__output__"]


def test_every_generated_test_has_a_time_limit_without_pytest_timeout(tmp_path):
    """A sync call that blocks for ever is interrupted (SIGALRM or the watchdog thread)."""
    source = CONTEXT_MANAGER.replace(
        "        return context\n",
        "        import time\n        while True:\n            time.sleep(0.05)\n")
    repo = make_repo(tmp_path, {"context_manager": source})
    generate_tests(repo)
    _set_limits(repo, drive=1, test=120)
    outcomes = _outcomes(repo)
    test = ("test_trace_svc_context_manager::"
            "test_inject_trace_context_manager_impl_capture_trace_context_for_queue")
    assert outcomes[test] == "skipped", outcomes["__output__"]


def test_only_messages_are_judged_and_a_publish_without_context_fails(tmp_path):
    repo = make_repo(tmp_path, {"publisher": PUBLISHER})
    result = generate_tests(repo)
    [case] = [case for module in result.modules for case in module.cases]
    assert (case.label, case.sends) == ("self.outbox_manager", ("publish_to_outbox",))
    test = ("test_trace_svc_publisher::"
            "test_inject_default_batch_event_publisher_impl_publish_batch_event")
    assert _outcomes(repo)[test] == "passed"
    (repo / "svc" / "publisher.py").write_text(
        PUBLISHER.replace("        inject_trace_context(event_envelope.metadata)\n", ""))
    assert _outcomes(repo)[test] == "failed"


def test_the_span_api_is_never_taken_for_a_collaborator(tmp_path):
    """The carrier that is returned, and the carrier the caller handed in, are what the tests
    read; both fail once the injection is gone."""
    repo = make_repo(tmp_path, {"context_manager": CONTEXT_MANAGER})
    result = generate_tests(repo)
    cases = {case.site.entry: case for module in result.modules for case in module.cases}
    returned = cases["TraceContextManagerImpl.capture_trace_context_for_queue"]
    filled = cases["TraceContextManagerImpl.inject_trace_context_into_event"]
    assert returned.returned and not returned.patches
    assert filled.filled == ("event_metadata", "") and not filled.patches
    outcomes = _outcomes(repo)
    names = [f"test_trace_svc_context_manager::{case.name}" for case in (returned, filled)]
    assert [outcomes[name] for name in names] == ["passed", "passed"], outcomes["__output__"]
    (repo / "svc" / "context_manager.py").write_text(CONTEXT_MANAGER.replace(
        "inject_trace_context(context)", "pass").replace(
        "inject_trace_context(event_metadata)", "pass"))
    outcomes = _outcomes(repo)
    assert [outcomes[name] for name in names] == ["failed", "failed"], outcomes["__output__"]


def test_a_model_imported_inside_the_function_is_found_where_it_is_imported_from(tmp_path):
    repo = make_repo(tmp_path, {"router": LOCAL_IMPORT})
    generate_tests(repo)
    text = (repo / "tests" / "tracing" / "test_trace_svc_router.py").read_text()
    assert "harness.resolve(module, 'svc.events.BatchRegistered')" in text
    outcomes = _outcomes(repo)
    results = {k: v for k, v in outcomes.items() if k.startswith("test_trace_svc_router")}
    assert results and set(results.values()) == {"passed"}, outcomes["__output__"]


def test_a_module_this_environment_cannot_import_is_skipped_but_a_broken_repo_import_fails(
        tmp_path):
    repo = make_repo(tmp_path, {"third": THIRD_PARTY, "broken": BROKEN_REPO_IMPORT})
    generate_tests(repo)
    outcomes = _outcomes(repo)
    assert outcomes["test_trace_svc_third::test_inject_publish"] == "skipped"
    assert "install its dependencies" in outcomes["__output__"]
    assert outcomes["test_trace_svc_broken::test_inject_publish"] == "failed"


def test_the_contract_test_checks_for_the_distribution_and_names_it(tmp_path, monkeypatch):
    """`import scaffold` also succeeds for an unrelated package of that name; the contract asks
    for the distribution, and its skip says how to install it, from scaffold.DISTRIBUTION."""
    import scaffold.testgen.generate as generate

    monkeypatch.setattr(generate, "DISTRIBUTION", "tracing-tool-under-test")
    repo = make_repo(tmp_path, {"publisher": PUBLISHER})
    generate_tests(repo)
    contract = repo / "tests" / "tracing" / "test_tracing_contract.py"
    text = contract.read_text()
    assert "DISTRIBUTION = 'tracing-tool-under-test'" in text
    assert "importlib.metadata.distribution(DISTRIBUTION)" in text
    assert not re.search(r"^\s*(import scaffold|from scaffold)\b", text, flags=re.M)
    outcomes = run_pytest(repo, "tests/tracing/test_tracing_contract.py", "-rs")
    assert outcomes["test_tracing_contract::test_retrofit_check_finds_nothing_to_change"] == (
        "skipped")
    assert "pip install tracing-tool-under-test" in outcomes["__output__"]


def test_two_files_that_import_under_one_name_get_their_own_skipped_tests(tmp_path):
    repo = make_repo(tmp_path, {})
    for service in ("alpha", "beta"):
        folder = repo / "services" / service
        folder.mkdir(parents=True)
        (folder / "app.py").write_text(THIRD_PARTY.replace("import not_installed_anywhere  "
                                                           "# noqa: F401\n", ""))
    result = generate_tests(repo)
    apps = [module for module in result.modules if module.module == "app"]
    assert len(apps) == 2 and len({module.test_file for module in apps}) == 2
    assert all("2 files import as `app`" in (case.skip or "")
               for module in apps for case in module.cases)


PROTOCOLS = """\
from typing import Protocol


class TopicNamingProtocol(Protocol):
    def get_topic_name(self, event: str) -> str:
        ...
"""
# essay_lifecycle_service/implementations/batch_lifecycle_publisher.py: its collaborators'
# types are imported under TYPE_CHECKING, the topic comes from a Protocol's method; the
# envelope refused the recorder standing in for that method's str.
LIFECYCLE_PUBLISHER = """\
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from helpers.observability import inject_trace_context
from svc.events import EventEnvelope

if TYPE_CHECKING:
    from svc.protocols import TopicNamingProtocol


class BatchLifecyclePublisher:
    def __init__(self, outbox_manager: Any, topic_naming: TopicNamingProtocol) -> None:
        self.outbox_manager = outbox_manager
        self.topic_naming = topic_naming

    async def publish_batch_essays_ready(self, batch_id: str, correlation_id: str) -> None:
        envelope = EventEnvelope(
            event_type=self.topic_naming.get_topic_name("batch.essays.ready"),
            correlation_id=correlation_id,
            data={"batch_id": batch_id},
        )
        if envelope.metadata is None:
            envelope.metadata = {}
        inject_trace_context(envelope.metadata)
        await self.outbox_manager.publish_to_outbox(
            aggregate_id=batch_id, event_data=envelope, topic=envelope.event_type)
"""
# llm_provider_service/implementations/event_publisher_impl.py: the injected envelope goes
# out through the kit's traced_publish; the inject site was generated skipped.
LLM_PUBLISHER = """\
from typing import Any

from helpers.observability import inject_trace_context
from svc.events import EventEnvelope
from svc.tracekit import traced_publish


class LLMEventPublisherImpl:
    def __init__(self, kafka_bus: Any) -> None:
        self.kafka_bus = kafka_bus

    async def publish_llm_request_started(self, correlation_id: str) -> None:
        envelope = EventEnvelope(
            event_type="llm_provider.request_started.v1", correlation_id=correlation_id, data={})
        if envelope.metadata is None:
            envelope.metadata = {}
        inject_trace_context(envelope.metadata)
        await traced_publish(self.kafka_bus.publish, "llm.topic", envelope)
"""


def test_a_protocol_collaborator_returns_what_its_method_declares(tmp_path):
    repo = make_repo(tmp_path, {"lifecycle": LIFECYCLE_PUBLISHER})
    (repo / "svc" / "protocols.py").write_text(PROTOCOLS)
    generate_tests(repo)
    outcomes = _outcomes(repo)
    test = ("test_trace_svc_lifecycle::"
            "test_inject_batch_lifecycle_publisher_publish_batch_essays_ready")
    assert outcomes[test] == "passed", outcomes["__output__"]


def test_an_envelope_sent_through_the_kits_traced_publish_is_judged_there(tmp_path):
    repo = make_repo(tmp_path, {"llm": LLM_PUBLISHER})
    result = generate_tests(repo)
    inject = next(case for module in result.modules for case in module.cases
                  if case.site.kind == "inject")
    assert inject.skip is None and (inject.label, inject.sends) == ("self.kafka_bus",
                                                                   ("publish",))
    outcomes = _outcomes(repo)
    test = f"test_trace_svc_llm::{inject.name}"
    assert outcomes[test] == "passed", outcomes["__output__"]


# identity_service/implementations/event_publisher_impl.py: the dict's values were their own
# keys ("id", "registered_at"), which the event model refused.
IDENTITY_PUBLISHER = """\
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from helpers.observability import inject_trace_context
from svc.events import EventEnvelope


class UserRegisteredV1(BaseModel):
    user_id: UUID
    registered_at: datetime


class DefaultIdentityEventPublisher:
    def __init__(self, outbox_manager: Any) -> None:
        self.outbox_manager = outbox_manager

    async def publish_user_registered(self, user: dict, correlation_id: str) -> None:
        payload = UserRegisteredV1(user_id=user["id"], registered_at=user["registered_at"])
        envelope = EventEnvelope(event_type="identity.user.registered.v1",
                                 correlation_id=correlation_id, data=payload.model_dump())
        envelope.metadata = {}
        inject_trace_context(envelope.metadata)
        await self.outbox_manager.publish_to_outbox(event_data=envelope, topic="identity")
"""


def test_the_keys_a_function_reads_hold_values_shaped_by_their_names(tmp_path):
    repo = make_repo(tmp_path, {"identity": IDENTITY_PUBLISHER})
    generate_tests(repo)
    outcomes = _outcomes(repo)
    test = ("test_trace_svc_identity::"
            "test_inject_default_identity_event_publisher_publish_user_registered")
    assert outcomes[test] == "passed", outcomes["__output__"]


# spellchecker_service/event_processor.py: the context is restored only `if ... and tracer:`,
# a parameter with a default of None; left out, the test judged the other branch.
GUARDED_HANDLER = """\
from typing import Any

from opentelemetry.trace import Tracer

from helpers.observability import use_trace_context
from svc.events import EventEnvelope


async def _process_single_message_impl(msg: Any, envelope: EventEnvelope) -> bool:
    return True


async def process_single_message(msg: Any, tracer: "Tracer | None" = None) -> bool:
    request_envelope = EventEnvelope.model_validate_json(msg.value.decode("utf-8"))
    if request_envelope.metadata and tracer:
        with use_trace_context(request_envelope.metadata):
            return await _process_single_message_impl(msg, request_envelope)
    return await _process_single_message_impl(msg, request_envelope)
"""


def test_a_defaulted_parameter_that_guards_the_site_is_given_a_value(tmp_path):
    repo = make_repo(tmp_path, {"handler": GUARDED_HANDLER})
    generate_tests(repo)
    text = (repo / "tests" / "tracing" / "test_trace_svc_handler.py").read_text()
    assert "'tracer': harness.argument(subject.process_single_message, 'tracer')" in text
    outcomes = _outcomes(repo)
    results = {k: v for k, v in outcomes.items() if k.startswith("test_trace_svc_handler")}
    assert results and set(results.values()) == {"passed"}, outcomes["__output__"]


# entitlements_service/implementations/event_publisher_impl.py: a `str` parameter ends up in
# a Literal field; the parameter's own name was no valid choice.
SUBJECT_PUBLISHER = """\
from typing import Any, Literal

from pydantic import BaseModel

from helpers.observability import inject_trace_context
from svc.events import EventEnvelope


class SubjectRefV1(BaseModel):
    type: Literal["org", "user"]
    id: str


class EventPublisherImpl:
    def __init__(self, outbox_manager: Any) -> None:
        self.outbox_manager = outbox_manager

    async def publish_usage_recorded(self, subject_type: str, subject_id: str) -> None:
        subject = SubjectRefV1(type=subject_type, id=subject_id)
        envelope = EventEnvelope(event_type="usage", correlation_id=subject_id,
                                 data=subject.model_dump(), metadata={})
        inject_trace_context(envelope.metadata)
        await self.outbox_manager.publish_to_outbox(event_data=envelope, topic="usage")
"""


def test_a_str_parameter_passed_to_a_literal_field_takes_one_of_its_values(tmp_path):
    repo = make_repo(tmp_path, {"subjects": SUBJECT_PUBLISHER})
    generate_tests(repo)
    outcomes = _outcomes(repo)
    test = "test_trace_svc_subjects::test_inject_event_publisher_impl_publish_usage_recorded"
    assert outcomes[test] == "passed", outcomes["__output__"]


# cj_assessment_service/implementations/content_client_impl.py: the request is a closure
# the method hands to its retry manager.
RETRIED_CLIENT = """\
from typing import Any

from helpers.observability import inject_trace_context


class ContentClientImpl:
    def __init__(self, session: Any, retry_manager: Any) -> None:
        self.session = session
        self.retry_manager = retry_manager

    async def fetch_content(self, storage_id: str) -> str:
        async def _make_content_request() -> str:
            trace_headers: dict[str, str] = {}
            inject_trace_context(trace_headers)
            async with self.session.get(storage_id, headers=trace_headers) as response:
                return await response.text()

        return await self.retry_manager.with_retry(
            _make_content_request, provider_name="content_service")
"""
# essay_lifecycle_service/batch_command_handlers.py: the site sits in the branch of one event
# type, and the record is parsed by a function of the module.
ROUTED_HANDLER = """\
from typing import Any

from aiokafka import ConsumerRecord

from helpers.observability import use_trace_context
from svc.enums import ProcessingEvent, topic_name
from svc.events import BatchRegistered, EventEnvelope


def _deserialize_message(msg: ConsumerRecord) -> EventEnvelope | None:
    try:
        return EventEnvelope.model_validate_json(msg.value.decode("utf-8"))
    except ValueError:
        return None


async def process_single_message(msg: ConsumerRecord, handler: Any) -> bool:
    envelope = _deserialize_message(msg)
    if envelope is None:
        return False
    if envelope.metadata:
        with use_trace_context(envelope.metadata):
            await handler.handle(envelope)
    return True


async def route(envelope: EventEnvelope, handler: Any) -> bool:
    event_type = envelope.event_type
    if event_type == "other":
        return False
    elif event_type == topic_name(ProcessingEvent.BATCH_REGISTERED):
        data = BatchRegistered.model_validate(envelope.data)
        if envelope.metadata:
            with use_trace_context(envelope.metadata):
                await handler.registered(data)
    return True
"""
# spellchecker_service/implementations/event_publisher_impl.py and
# essay_lifecycle_service/implementations/service_request_dispatcher.py: an optional field the
# code refuses when empty, and a list the code loops over.
REFUSING_PUBLISHER = """\
from typing import Any

from pydantic import BaseModel

from helpers.observability import inject_trace_context
from svc.events import EventEnvelope


class ResultData(BaseModel):
    entity_id: str
    parent_id: str | None = None


class EssayRef(BaseModel):
    essay_id: str


class Publisher:
    def __init__(self, outbox: Any) -> None:
        self.outbox = outbox

    async def publish_result(self, event_data: ResultData) -> None:
        if not event_data.parent_id:
            raise ValueError("batch_id (parent_id) is required")
        envelope = EventEnvelope(event_type="result", correlation_id=event_data.parent_id,
                                 data=event_data.model_dump(), metadata={})
        inject_trace_context(envelope.metadata)
        await self.outbox.add_event(envelope)

    async def dispatch(self, essays: list[EssayRef]) -> None:
        for essay in essays:
            envelope = EventEnvelope(event_type="request", correlation_id=essay.essay_id,
                                     data={}, metadata={})
            inject_trace_context(envelope.metadata)
            await self.outbox.add_event(envelope)
"""
# result_aggregator_service and spellchecker_service kafka_consumer.py: a getmany() batch as a
# parameter, and records numbered with enumerate().
BATCH_CONSUMER = """\
from typing import Any, Dict, List

from aiokafka import ConsumerRecord

from svc.tracekit import consume_span


class Consumer:
    def __init__(self, consumer: Any, group: str) -> None:
        self.consumer = consumer
        self.group = group
        self.should_stop = False

    async def _process_batch(self, messages: Dict[str, List[ConsumerRecord]]) -> None:
        for topic, records in messages.items():
            for record in records:
                with consume_span(record, group_id=self.group):
                    await self._process_message(record)

    async def run(self) -> None:
        while not self.should_stop:
            result = await self.consumer.getmany(timeout_ms=1000)
            for tp, messages in result.items():
                for count, msg in enumerate(messages):
                    with consume_span(msg, group_id=self.group):
                        await self._process_message(msg)

    async def _process_message(self, record: Any) -> None:
        return None
"""


@pytest.mark.parametrize("name, source, expected", [
    ("client", RETRIED_CLIENT, 1),
    ("routes", ROUTED_HANDLER, 2),
    ("publisher", REFUSING_PUBLISHER, 2),
    ("batches", BATCH_CONSUMER, 4),
], ids=["a closure run by a retry helper", "an event-type branch and a parsing function",
        "a refused empty field and a looped-over list", "a batch parameter and enumerate()"])
def test_sites_reached_only_through_the_code_s_own_shapes_are_driven(tmp_path, name, source,
                                                                     expected):
    repo = make_repo(tmp_path, {name: source})
    result = generate_tests(repo)
    assert result.skipped == 0, result.summary()
    outcomes = _outcomes(repo)
    results = {k: v for k, v in outcomes.items() if k.startswith(f"test_trace_svc_{name}")}
    assert len(results) == expected and set(results.values()) == {"passed"}, (
        outcomes["__output__"])


# essay_lifecycle_service/metrics.py beside batch_orchestrator_service/metrics.py: two services
# create a metric of the same name on the process-wide registry the first time they need it.
# prometheus_client is not a dependency here: the stand-in keeps exactly the two tables (and
# the duplicate check) of its CollectorRegistry that the harness saves and puts back.
PROMETHEUS_REGISTRY = """\
import threading


class DuplicateTimeseries(ValueError):
    pass


class CollectorRegistry:
    def __init__(self):
        self._lock = threading.Lock()
        self._names_to_collectors = {}
        self._collector_to_names = {}

    def register(self, name, collector):
        with self._lock:
            if name in self._names_to_collectors:
                raise DuplicateTimeseries(f"Duplicated timeseries in CollectorRegistry: {name}")
            self._names_to_collectors[name] = collector
            self._collector_to_names[collector] = [name]


REGISTRY = CollectorRegistry()
"""
METERED_HANDLER = """\
from typing import Any

from prometheus_client.registry import REGISTRY

from helpers.observability import use_trace_context
from svc.events import EventEnvelope

_metrics: dict[str, Any] | None = None


def get_metrics() -> dict[str, Any]:
    global _metrics
    if _metrics is None:
        counter = object()
        REGISTRY.register("http_requests_total", counter)
        _metrics = {"requests": counter}
    return _metrics


async def handle(envelope: EventEnvelope, handler: Any) -> None:
    get_metrics()
    with use_trace_context(envelope.metadata):
        await handler.run(envelope)
"""


def test_metrics_one_test_registers_are_taken_back_before_the_next(tmp_path):
    repo = make_repo(tmp_path, {"first": METERED_HANDLER, "second": METERED_HANDLER})
    (repo / "prometheus_client").mkdir()
    (repo / "prometheus_client" / "__init__.py").write_text("")
    (repo / "prometheus_client" / "registry.py").write_text(PROMETHEUS_REGISTRY)
    generate_tests(repo)
    outcomes = _outcomes(repo)
    results = {k: v for k, v in outcomes.items() if k.startswith(("test_trace_svc_first",
                                                                    "test_trace_svc_second"))}
    assert len(results) == 2 and set(results.values()) == {"passed"}, outcomes["__output__"]


# A HuleEdu-style internal client: the injection is an argument of the call it returns; the
# test judged the returned response and failed on a correct retrofit.
RETURNED_REQUEST = """\
import httpx

from helpers.observability import inject_trace_context


class ContentClient:
    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self._base_url = base_url

    async def update(self, essay_id: str, text: str) -> httpx.Response:
        return await self._client.patch(
            f"{self._base_url}/essays/{essay_id}", json={"text": text},
            headers=inject_trace_context({}),
        )
"""
# websocket_service's Redis listener (trimmed): the message comes from get_message() of an
# awaitable pub/sub entered with `async with`; the test skipped (nothing is a parameter).
PUBSUB_LISTENER = """\
import asyncio
import logging

from svc.tracekit import restore_from_queue

logger = logging.getLogger(__name__)


class RedisMessageListener:
    def __init__(self, redis_client, websocket_manager) -> None:
        self._redis_client = redis_client
        self._websocket_manager = websocket_manager

    async def listen(self, user_id: str) -> None:
        channel = self._redis_client.get_user_channel(user_id)
        async with self._redis_client.subscribe(channel) as pubsub:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message and message.get("type") == "message":
                    with restore_from_queue(message["data"]):
                        data = message["data"].decode("utf-8")
                        logger.debug("forwarding %s", data[:100])
                        await self._websocket_manager.send_message_to_user(user_id, data)
                await asyncio.sleep(0.01)
"""
UNTRACED = {
    "client": ("headers=inject_trace_context({})", "headers={}"),
    "listener": ('with restore_from_queue(message["data"]):', "if True:"),
}


def test_a_returned_request_and_a_pubsub_listener_pass_traced_and_fail_untraced(tmp_path):
    repo = make_repo(tmp_path, {"client": RETURNED_REQUEST, "listener": PUBSUB_LISTENER})
    generate_tests(repo)
    traced = {k: v for k, v in _outcomes(repo).items() if k.startswith("test_trace_svc_")}
    assert len(traced) == 3 and set(traced.values()) == {"passed"}, traced
    for name, (written, plain) in UNTRACED.items():
        path = repo / "svc" / f"{name}.py"
        path.write_text(path.read_text().replace(written, plain))
    untraced = _outcomes(repo)
    assert {k: untraced[k] for k in traced} == dict.fromkeys(traced, "failed"), untraced[
        "__output__"]
