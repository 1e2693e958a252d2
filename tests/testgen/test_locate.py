"""The locator finds instrumented sites by what they call; the planner says how to drive each."""

from __future__ import annotations

import textwrap

import pytest

from scaffold.testgen.locate import locate
from scaffold.testgen.model import Case, Patch, Value


def cases(source: str, *, helper: str | None = None) -> list[Case]:
    return locate(textwrap.dedent(source), path="service/app.py", module="service.app",
                  repo_packages={"service"}, kit="service.tracekit",
                  helper_module=helper).cases


def only(source: str, **options) -> Case:
    found = cases(source, **options)
    assert len(found) == 1, found
    return found[0]


def argument(case: Case, name: str) -> Value:
    return next(a.value for a in case.arguments if a.name == name)


def test_an_async_for_consumer_loop_gets_a_fake_consumer_and_probes_inside_the_span():
    case = only("""
        from aiokafka import AIOKafkaConsumer
        from service.tracekit import consume_span

        class Loop:
            async def run(self):
                consumer = AIOKafkaConsumer("t")
                async for msg in consumer:
                    with consume_span(msg):
                        await self.handle(msg)

            async def handle(self, msg): ...
    """)
    assert (case.site.kind, case.site.form, case.site.entry) == ("consume", "with:consume_span",
                                                                  "Loop.run")
    assert (case.subject, case.subject_class, case.function, case.is_async) == (
        "instance", "Loop", "run", True)
    assert Patch("probe", "class", "handle", label="self.handle") in case.patches
    factory = next(p for p in case.patches if p.action == "factory")
    assert (factory.owner, factory.name, factory.value.recipe) == ("module", "AIOKafkaConsumer",
                                                                   "consumer")
    assert case.without_context and case.skip is None


def test_a_consumer_made_by_a_factory_the_instance_holds_gets_a_factory_of_the_fake():
    case = only("""
        from aiokafka import AIOKafkaConsumer
        from service.tracekit import consume_span

        class Loop:
            def __init__(self, settings, consumer_factory=None):
                self.settings = settings
                self.consumer_factory = consumer_factory or AIOKafkaConsumer

            async def run(self):
                self.consumer = self.consumer_factory(*self.settings.TOPICS)
                async for msg in self.consumer:
                    with consume_span(msg):
                        await self.handle(msg)

            async def handle(self, msg): ...
    """)
    assert case.skip is None
    factory = next(p for p in case.patches if p.action == "factory")
    assert (factory.owner, factory.name, factory.value.recipe) == (
        "subject", "consumer_factory", "consumer")
    assert not any(p.owner == "module" and p.name == "self" for p in case.patches)


def test_a_factory_the_entry_assigns_itself_before_the_call_is_not_replaced():
    case = only("""
        from aiokafka import AIOKafkaConsumer
        from service.tracekit import consume_span

        class Loop:
            async def run(self):
                self.consumer_factory = AIOKafkaConsumer
                self.consumer = self.consumer_factory("t")
                async for msg in self.consumer:
                    with consume_span(msg):
                        await self.handle(msg)

            async def handle(self, msg): ...
    """)
    assert not any(p.owner == "subject" and p.name == "consumer_factory"
                   for p in case.patches)
    assert case.skip is not None


def test_a_getmany_batch_is_traced_back_to_its_consumer_through_the_nested_loops():
    case = only("""
        from service.tracekit import consume_span

        async def drain(consumer, handle):
            while True:
                for partition, records in (await consumer.getmany(timeout_ms=500)).items():
                    for record in records:
                        with consume_span(record):
                            await handle(record)
    """)
    assert case.skip is None
    assert argument(case, "consumer").recipe == "consumer"


def test_a_handler_parsing_an_envelope_gets_a_record_whose_value_is_that_envelope():
    case = only("""
        from pydantic import BaseModel
        from service.tracekit import restore_span

        class Envelope(BaseModel):
            data: dict
            metadata: dict | None = None

        async def handle(msg, process):
            envelope = Envelope.model_validate_json(msg.value)
            with restore_span(envelope.metadata, "handle"):
                essay = envelope.data["essay_id"]
                await process(envelope, essay)
    """)
    record = argument(case, "msg")
    assert (record.recipe, record.model, record.attribute) == ("record", "Envelope", "metadata")
    assert record.overrides == (("data", Value("keys", keys=("essay_id",))),)
    assert case.record == record and case.without_context


def test_a_producer_attribute_is_replaced_by_a_recorder_judged_on_its_sends():
    case = only("""
        from service.tracekit import traced_send

        class Bus:
            async def publish(self, topic, value):
                await traced_send(self._producer, topic, value)
    """)
    assert case.site.kind == "produce"
    assert case.patches == (Patch("value", "subject", "_producer", label="self._producer",
                                  value=Value("recorder", label="self._producer")),)
    assert (case.label, case.sends) == ("self._producer", ("send", "send_and_wait"))


def test_traced_publish_records_the_bus_and_its_publish_method():
    case = only("""
        from service.tracekit import traced_publish

        async def announce(bus, topic, envelope):
            await traced_publish(bus.publish, topic, envelope)
    """)
    assert argument(case, "bus") == Value("recorder", label="bus")
    assert (case.label, case.sends) == ("bus", ("publish",))


@pytest.mark.parametrize(("body", "label", "owner"), [
    ("inject_trace_context(headers)\nawait self._client.post('/x', headers=headers)",
     "self._client", "subject"),
    ("inject_trace_context(headers)\nawait send_on(headers)", "send_on", "module"),
    ("await self._client.get('/x', headers=inject_trace_context({}))", "self._client",
     "subject"),
    ("return await self._client.patch('/x', headers=inject_trace_context({}))",
     "self._client", "subject"),
    ("self._redis.rpush('q', json.dumps(capture_for_queue({'k': 1})))", "self._redis",
     "subject"),
    ("pipe = self._redis.pipeline()\npipe.lpush('q', json.dumps(capture_for_queue(headers)))",
     "self._redis", "subject"),
    ("async with self._redis.pipeline() as pipe:\n"
     "    pipe.lpush('q', json.dumps(capture_for_queue(dict(a=1))))", "self._redis", "subject"),
    ("message = json.dumps(capture_for_queue(headers))\nreturn await self.send(message)",
     "self.send", "class"),
], ids=["through a client attribute", "through a module function", "as a direct argument",
        "as an argument of the returned call", "serialised into a push",
        "pushed on a pipeline", "pushed on a pipeline entered with async with",
        "through a method of its own"])
def test_an_injection_is_observed_where_the_carrier_leaves(body, label, owner):
    source = (
        "import json\n"
        "from service.tracekit import capture_for_queue, inject_trace_context\n\n"
        "async def send_on(headers): ...\n\n"
        "class Client:\n"
        "    async def send(self, message): ...\n\n"
        "    async def store(self):\n"
        "        headers = {}\n" + textwrap.indent(body, "        ") + "\n"
    )
    case = only(source)
    assert case.skip is None and case.label == label and not case.returned
    assert [p.owner for p in case.patches] == [owner]
    if "pipeline" in body:  # what is pushed on the pipeline the client made is the message
        assert case.sends == ("pipeline().lpush",)


def test_an_injection_whose_carrier_is_returned_is_checked_on_the_return_value():
    case = only("""
        from opentelemetry.propagate import inject

        def outgoing_headers():
            headers = {}
            inject(headers)
            return headers
    """)
    assert case.site.form == "call:inject" and case.returned


def test_an_injection_nobody_sends_is_skipped_with_the_reason():
    case = only("""
        from opentelemetry.propagate import inject

        def remember(cache):
            carrier = {}
            inject(carrier)
    """)
    assert "no call after `inject(carrier)` passes the carrier" in case.skip


def test_thread_work_is_probed_by_name_and_a_lambda_cannot_be():
    found = cases("""
        import contextvars
        from service.tracekit import submit

        def work(): ...

        class Pool:
            def run(self, pool):
                submit(pool, work)
                pool.submit(contextvars.copy_context().run, self.step)
                pool.submit(contextvars.copy_context().run, lambda: None)

            def step(self): ...
    """)
    assert [c.site.form for c in found] == ["call:submit", "arg:copy_context",
                                            "arg:copy_context"]
    assert found[0].patches == (Patch("probe", "module", "work", label="work"),)
    assert found[1].patches == (Patch("probe", "class", "step", label="self.step"),)
    assert "not a name or method" in found[2].skip or "neither" in found[2].skip


def test_a_thread_subclass_is_driven_by_starting_it_with_its_run_probed():
    case = only("""
        import contextvars, functools, threading

        class Poller(threading.Thread):
            def start(self):
                self.run = functools.partial(contextvars.copy_context().run, self.run)
                super().start()

            def run(self): ...
    """)
    assert (case.site.form, case.subject, case.function) == ("stmt:start-capture", "instance",
                                                             None)
    assert case.patches == (Patch("probe", "class", "run", label="Poller.run"),)


def test_a_token_site_raises_inside_the_guarded_block_and_attaches_a_context_of_its_own():
    case = only("""
        import json
        from opentelemetry import context
        from opentelemetry.propagate import extract

        class Worker:
            def process(self, raw, ctx, message):
                job = json.loads(raw)
                token = context.attach(ctx)
                try:
                    self.announce(job["essay_id"], message)
                finally:
                    context.detach(token)

            def announce(self, essay_id, message): ...
    """)
    assert case.site.form == "try-finally:token"
    assert case.patches == (Patch("fail", "class", "announce", label="self.announce"),)
    assert argument(case, "raw") == Value("json", label="raw", keys=("essay_id",))
    assert argument(case, "ctx").recipe == "context"
    assert argument(case, "message").recipe == "poison"


def test_a_token_site_with_nothing_to_make_raise_is_skipped():
    case = only("""
        from opentelemetry import context

        def handle(ctx):
            token = context.attach(ctx)
            try:
                pass
            finally:
                context.detach(token)
    """)
    assert "nothing inside the block guarded by" in case.skip


def test_start_up_and_nested_functions_are_skipped_with_their_reasons():
    found = cases("""
        from service.tracekit import init_tracing, submit

        def main():
            init_tracing("svc")

        def outer(pool):
            def inner():
                submit(pool, print)
            return inner
    """)
    assert [c.site.kind for c in found] == ["bootstrap", "thread"]
    assert "nothing to drive" in found[0].skip
    assert "nested in outer" in found[1].skip


def test_helper_module_names_count_only_for_the_configured_helper_module():
    source = """
        from huleedu_service_libs.observability import inject_trace_context

        async def announce(bus, envelope):
            inject_trace_context(envelope.metadata)
            await bus.publish(envelope)
    """
    assert cases(source) == []
    case = only(source, helper="huleedu_service_libs.observability")
    assert case.site.kind == "inject" and case.label == "bus"


def test_names_that_merely_look_like_the_kit_are_not_sites():
    assert cases("""
        from concurrent.futures import ThreadPoolExecutor
        from mylib import submit, consume_span

        def run(pool, record):
            submit(pool, print)
            with consume_span(record):
                pass
    """) == []


def test_a_closure_handed_to_a_retry_helper_is_driven_through_its_method():
    case = only("""
        from huleedu_service_libs.observability import inject_trace_context

        class ContentClient:
            async def fetch_content(self, storage_id: str) -> str:
                async def _make_content_request() -> str:
                    trace_headers: dict[str, str] = {}
                    inject_trace_context(trace_headers)
                    async with self.session.get(storage_id, headers=trace_headers) as response:
                        return await response.text()

                return await self.retry_manager.with_retry(
                    _make_content_request, provider_name="content_service")
    """, helper="huleedu_service_libs.observability")
    assert case.skip is None
    assert (case.subject, case.function, case.is_async, case.site.entry) == (
        "instance", "fetch_content", True, "ContentClient.fetch_content")
    assert case.label == "self.session" and case.sends == ("get",)
    runner = next(p for p in case.patches if p.name == "retry_manager")
    assert (runner.owner, runner.value.recipe, runner.value.attribute) == (
        "subject", "runner", "with_retry")
    assert [a.name for a in case.arguments] == ["storage_id"]


def test_a_closure_the_function_only_returns_is_still_not_driven():
    case = only("""
        from service.tracekit import submit

        def outer(pool):
            def inner():
                submit(pool, print)
            return inner
    """)
    assert "nested in outer" in case.skip


def test_a_site_in_an_event_type_branch_gets_that_event_type_and_that_branch_s_model():
    case = only("""
        from common.events import Registered, SpellcheckCommand, Event, topic_name
        from huleedu_service_libs.observability import use_trace_context

        async def route(envelope, handler):
            event_type = envelope.event_type
            if event_type == topic_name(Event.REGISTERED):
                data = Registered.model_validate(envelope.data)
                await handler.registered(data)
            elif event_type == topic_name(Event.SPELLCHECK):
                command = SpellcheckCommand.model_validate(envelope.data)
                if envelope.metadata:
                    with use_trace_context(envelope.metadata):
                        await handler.spellcheck(command)
    """, helper="huleedu_service_libs.observability")
    assert case.skip is None
    envelope = argument(case, "envelope")
    overrides = dict(envelope.overrides)
    assert overrides["event_type"] == Value("expression", label="topic_name(Event.SPELLCHECK)")
    assert overrides["data"] == Value("dump", model="SpellcheckCommand")


def test_a_branch_on_a_local_value_sets_nothing():
    case = only("""
        from huleedu_service_libs.observability import use_trace_context

        async def route(envelope, handler):
            kind = compute()
            if envelope.event_type == kind:
                with use_trace_context(envelope.metadata):
                    await handler.run()
    """, helper="huleedu_service_libs.observability")
    assert "event_type" not in dict(argument(case, "envelope").overrides)


def test_records_numbered_with_enumerate_are_traced_back_to_their_consumer():
    case = only("""
        from service.tracekit import consume_span

        class Loop:
            async def run(self):
                while not self.should_stop:
                    result = await self.consumer.getmany(timeout_ms=1000)
                    for tp, messages in result.items():
                        for msg_count, msg in enumerate(messages):
                            with consume_span(msg, group_id=self.group):
                                await self.process(msg)

            async def process(self, msg): ...
    """)
    assert case.skip is None
    consumer = next(p for p in case.patches if p.name == "consumer")
    assert (consumer.owner, consumer.value.recipe) == ("subject", "consumer")
    assert case.stops == (("should_stop", "True"),)  # the loop ends after the records


def test_a_restore_entered_only_when_the_message_has_context_is_a_with_site():
    case = only("""
        from contextlib import nullcontext
        from huleedu_service_libs.observability import use_trace_context

        async def handle(envelope, handler):
            with (use_trace_context(envelope.metadata) if envelope.metadata else nullcontext()):
                await handler.run(envelope)
    """, helper="huleedu_service_libs.observability")
    assert (case.site.form, case.skip) == ("with:use_trace_context", None)
    assert argument(case, "envelope").recipe == "model"


def test_a_record_parsed_by_a_function_of_the_module_gets_that_function_s_envelope():
    case = only("""
        from typing import Any
        from aiokafka import ConsumerRecord
        from common.envelope import EventEnvelope
        from huleedu_service_libs.observability import use_trace_context

        def _deserialize_message(msg: ConsumerRecord) -> EventEnvelope[Any] | None:
            try:
                raw_message = msg.value.decode("utf-8")
                return EventEnvelope[Any].model_validate_json(raw_message)
            except ValueError:
                return None

        async def process_single_message(msg: ConsumerRecord, handler) -> bool:
            envelope = _deserialize_message(msg)
            if envelope is None:
                return False
            if envelope.metadata:
                with use_trace_context(envelope.metadata):
                    await handler.run(envelope)
            return True
    """, helper="huleedu_service_libs.observability")
    assert case.skip is None
    record = argument(case, "msg")
    assert (record.recipe, record.model, record.attribute) == (
        "record", "EventEnvelope[Any]", "metadata")


def test_a_getmany_batch_parameter_is_handed_the_record_as_a_batch():
    case = only("""
        from typing import Dict, List
        from aiokafka import ConsumerRecord
        from service.tracekit import consume_span

        class Consumer:
            async def _process_batch(self, messages: Dict[str, List[ConsumerRecord]]) -> None:
                for topic, records in messages.items():
                    for record in records:
                        with consume_span(record, group_id=self.group):
                            await self._process_message(record)

            async def _process_message(self, record): ...
    """)
    assert case.skip is None
    assert argument(case, "messages") == Value("batch", label="messages")
    assert case.record is not None and case.stops == ()


def test_an_optional_field_the_code_refuses_when_empty_is_filled_in():
    case = only("""
        from huleedu_service_libs.observability import inject_trace_context

        class Publisher:
            async def publish_result(self, event_data: ResultData, correlation_id) -> None:
                if not event_data.parent_id:
                    raise ValueError("batch_id (parent_id) is required")
                if event_data.storage is None:
                    return
                envelope = Envelope(data=event_data, metadata={})
                inject_trace_context(envelope.metadata)
                await self.outbox.add_event(envelope)
    """, helper="huleedu_service_libs.observability")
    assert case.skip is None
    overrides = dict(argument(case, "event_data").overrides)
    assert overrides == {"parent_id": Value("fill"), "storage": Value("fill")}


def test_a_falsy_check_leading_to_the_site_fills_nothing():
    case = only("""
        from huleedu_service_libs.observability import inject_trace_context

        async def publish(event_data: ResultData, bus) -> None:
            if not event_data.parent_id:
                envelope = Envelope(data=event_data, metadata={})
                inject_trace_context(envelope.metadata)
                await bus.publish(envelope)
    """, helper="huleedu_service_libs.observability")
    assert dict(argument(case, "event_data").overrides) == {}


def test_a_site_s_code_is_its_first_line_of_code_not_the_comment_above_it():
    case = only("""
        from huleedu_service_libs.observability import use_trace_context

        async def handle(envelope, handler):
            # Process callback with or without trace context
            with use_trace_context(envelope.metadata):
                await handler.run(envelope)
    """, helper="huleedu_service_libs.observability")
    assert case.site.code == "with use_trace_context(envelope.metadata):"


def test_a_str_parameter_renamed_by_a_typed_local_is_built_for_the_callee_it_reaches():
    case = only("""
        from common.events import CreditBalanceChangedV1, EventEnvelope, SubjectRefV1
        from common.events import SubjectType
        from huleedu_service_libs.observability import inject_trace_context

        class EventPublisherImpl:
            async def publish_credit_balance_changed(self, subject_type: str, subject_id: str):
                subject_type_literal: SubjectType = subject_type  # type: ignore
                event_data = CreditBalanceChangedV1(
                    subject=SubjectRefV1(type=subject_type_literal, id=subject_id))
                envelope = EventEnvelope(data=event_data, metadata={})
                inject_trace_context(envelope.metadata)
                await self.outbox_manager.publish_to_outbox(envelope)
    """, helper="huleedu_service_libs.observability")
    value = argument(case, "subject_type")
    assert (value.recipe, value.model, value.attribute, value.keys) == (
        "passed", "SubjectRefV1", "type", ("str",))


def test_a_readiness_flag_refusing_the_send_is_set_for_the_test():
    case = only("""
        from service.tracekit import traced_send

        class Bus:
            async def publish(self, topic, value):
                if not self.started:
                    raise RuntimeError("producer is not running")
                await traced_send(self.producer, topic, value=value)
    """)
    assert Patch("value", "subject", "started", label="self.started",
                 value=Value("expression", label="True")) in case.patches


@pytest.mark.parametrize(("body", "client", "keys"), [
    ("_, raw = self._redis.blpop('q')\ntask = json.loads(raw)\n"
     "with restore_from_queue(task):\n    handle(task['phase'])", "_redis", ("phase",)),
    ("raw = await self._redis.rpop('q')\nwith restore_from_queue(raw):\n    handle(raw)",
     "_redis", ()),
    ("async with self._redis.subscribe('ch') as pubsub:\n"
     "    message = await pubsub.get_message(timeout=1.0)\n"
     "    with restore_from_queue(message['data']):\n        handle(message)",
     "_redis", ()),
    ("for message in self.pubsub.listen():\n    with restore_from_queue(message['data']):\n"
     "        handle(message)", "pubsub", ()),
    ("reply = await self._redis.xreadgroup('g', 'c', {'s': '>'})\n"
     "for _stream, entries in reply:\n    for entry_id, fields in entries:\n"
     "        with restore_from_queue(fields):\n            handle(fields[b'essay_id'])",
     "_redis", ("essay_id",)),
], ids=["blpop of a JSON task", "rpop of the raw item", "get_message of a subscription",
        "listen() of a pub/sub", "stream entries of xreadgroup"])
def test_an_item_read_from_redis_is_handed_over_by_a_stand_in_client(body, client, keys):
    source = (
        "import json\n"
        "from service.tracekit import restore_from_queue\n\n"
        "def handle(item): ...\n\n"
        "class Worker:\n"
        "    async def run(self):\n" + textwrap.indent(body, "        ") + "\n"
    )
    case = only(source)
    assert case.skip is None, case.skip
    queue = next(p for p in case.patches if p.value is not None and p.value.recipe == "queue")
    assert (queue.owner, queue.name, queue.value.keys) == ("subject", client, keys)


def test_an_item_of_unknown_origin_is_not_driven():
    case = only("""
        from service.tracekit import restore_from_queue

        def run(cache, handle):
            item = cache.take()
            with restore_from_queue(item):
                handle(item)
    """)
    assert "nor an item read from a Redis client" in case.skip


def test_a_parameter_a_branch_compares_with_a_literal_is_given_that_literal():
    stream, bulk = cases("""
        import json
        from service.tracekit import capture_for_queue

        async def produce(redis, name, item, mode):
            if mode == "stream":
                await redis.xadd(name, capture_for_queue({"data": item}))
            elif "bulk" == mode:
                await redis.rpush(name, json.dumps(capture_for_queue({"data": item})))
    """)
    assert argument(stream, "mode") == Value("expression", label='"stream"')
    assert argument(bulk, "mode") == Value("expression", label='"bulk"')
