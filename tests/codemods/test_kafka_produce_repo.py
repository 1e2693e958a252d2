"""kafka-produce across files: a configured send wrapper defined in a shared library, called
from a service (a small HuleEdu-shaped repo, through the engine). One PRODUCER span per
message: where the wrapper sends itself, its body is traced and no caller is wrapped; where it
does not, its callers are, in the form its signature declares, or reported with the reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from scaffold.api import Options, run
from scaffold.codemods.kafka_produce import KafkaProduce
from scaffold.engine import Kind

CONFIG = """\
[tool.scaffold]
kit = "shared.tracekit"
kafka-producers = ["shared.kafka_client.KafkaBus.publish"]
"""

# libs/huleedu_service_libs/kafka_client.py, trimmed: it builds its producer and sends itself
SENDS_ITSELF = """\
    from aiokafka import AIOKafkaProducer


    class KafkaBus:
        def __init__(self, *, client_id: str, bootstrap_servers: str) -> None:
            self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers,
                                             client_id=client_id)

        async def publish(self, topic: str, envelope, key: str | None = None,
                          headers: dict[str, str] | None = None) -> None:
            header_bytes = None
            if headers:
                header_bytes = [(k, v.encode("utf-8")) for k, v in headers.items()]
            await self.producer.send_and_wait(topic, value=envelope, key=key,
                                              headers=header_bytes)
    """

# the same signature over a client this repo does not show: no send of its own
OVER_A_CLIENT = """\
    class KafkaBus:
        def __init__(self, client) -> None:
            self.client = client

        async def publish(self, topic: str, envelope, key: str | None = None,
                          headers{annotation} = None) -> None:
            await self.client.produce(topic, envelope, key, headers)
    """

# services/llm_provider_service/implementations/event_publisher_impl.py, trimmed
PUBLISHER = """\
    from shared.kafka_client import KafkaBus


    class LLMEventPublisherImpl:
        def __init__(self, kafka_bus: KafkaBus) -> None:
            self.kafka_bus = kafka_bus

        async def publish_started(self, topic: str, envelope, request_id: str) -> None:
            await self.kafka_bus.publish(topic=topic, envelope=envelope, key=request_id)
    """


def make_repo(root: Path, bus: str) -> Path:
    files = {
        "pyproject.toml": CONFIG,
        # an installable library: its src/ package is on the services' path once installed
        "libs/shared/pyproject.toml": '[project]\nname = "shared"\nversion = "1"\n',
        "libs/shared/src/shared/__init__.py": "",
        "libs/shared/src/shared/kafka_client.py": bus,
        "services/__init__.py": "",
        "services/llm/__init__.py": "",
        "services/llm/publisher.py": PUBLISHER,
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def produce(root: Path):
    result = run([root], [KafkaProduce], Options(jobs=1))
    findings = {(Path(f.path).relative_to(root).as_posix(), f.kind, f.message)
                for f in result.findings}
    changed = {Path(r.path).relative_to(root).as_posix(): r.updated for r in result.changed}
    return findings, changed


def test_a_wrapper_that_sends_itself_is_traced_there_and_its_callers_are_left_alone(
    tmp_path: Path,
) -> None:
    findings, changed = produce(make_repo(tmp_path, SENDS_ITSELF))
    assert set(changed) == {"libs/shared/src/shared/kafka_client.py"}
    assert "await traced_send(self.producer, topic" in changed[
        "libs/shared/src/shared/kafka_client.py"]
    assert {(path, kind) for path, kind, _ in findings} == {
        ("libs/shared/src/shared/kafka_client.py", Kind.CHANGE)}


def test_a_wrapper_without_a_send_of_its_own_has_its_callers_wrapped_with_dict_headers(
    tmp_path: Path,
) -> None:
    """The control of the test above: the same call, wrapped once the bus no longer sends."""
    root = make_repo(tmp_path, OVER_A_CLIENT.replace("{annotation}", ": dict[str, str] | None"))
    findings, changed = produce(root)
    assert set(changed) == {"services/llm/publisher.py"}
    assert ("await traced_publish(self.kafka_bus.publish, topic, envelope=envelope, "
            "key=request_id, headers_as=dict)") in changed["services/llm/publisher.py"]
    assert [kind for _, kind, _ in findings] == [Kind.CHANGE]


@pytest.mark.parametrize(
    ("annotation", "reason"),
    [
        ("", "the headers parameter of KafkaBus.publish is not annotated"),
        (": dict[str, bytes] | None", "is dict[str, bytes] | None, neither (key, bytes) pairs"),
    ],
    ids=["unannotated headers", "headers of another type"],
)
def test_a_wrapper_whose_headers_cannot_take_what_the_kit_passes_is_reported(
    tmp_path: Path, annotation: str, reason: str,
) -> None:
    findings, changed = produce(make_repo(tmp_path, OVER_A_CLIENT.replace("{annotation}",
                                                                          annotation)))
    assert changed == {}
    ((path, kind, message),) = findings
    assert (path, kind) == ("services/llm/publisher.py", Kind.FINDING)
    assert reason in message


def test_a_wrapper_the_repo_does_not_define_is_reported(tmp_path: Path) -> None:
    root = make_repo(tmp_path, SENDS_ITSELF)
    (root / "libs/shared/src/shared/kafka_client.py").unlink()
    findings, changed = produce(root)
    assert changed == {}
    ((path, kind, message),) = findings
    assert (path, kind) == ("services/llm/publisher.py", Kind.FINDING)
    assert "not defined in this repo" in message


# services/batch_conductor_service/implementations/kafka_dlq_producer_impl.py, trimmed: it
# sends through the producer of the bus it holds, defined in the shared library
DLQ_PRODUCER = """\
    import asyncio
    import json

    from shared.kafka_client import KafkaBus


    class KafkaDlqProducerImpl:
        def __init__(self, kafka_bus: KafkaBus, timeout_seconds: float = 5.0):
            self.kafka_bus = kafka_bus
            self._timeout_seconds = timeout_seconds

        async def publish_to_dlq(self, base_topic: str, dlq_message: dict) -> bool:
            await asyncio.wait_for(
                self.kafka_bus.producer.send(
                    topic=f"{base_topic}.DLQ",
                    key=None,
                    value=json.dumps(dlq_message),
                    headers={},
                ),
                timeout=self._timeout_seconds,
            )
            return True
    """


@pytest.mark.parametrize("config", [CONFIG, CONFIG.replace(
    'kafka-producers = ["shared.kafka_client.KafkaBus.publish"]\n', "")],
    ids=["bus configured", "nothing configured"])
def test_a_send_through_the_producer_of_a_held_bus_in_another_module_is_traced(
    tmp_path: Path, config: str,
) -> None:
    root = make_repo(tmp_path, SENDS_ITSELF)
    (root / "pyproject.toml").write_text(config)
    (root / "services/llm/dlq.py").write_text(textwrap.dedent(DLQ_PRODUCER))
    findings, changed = produce(root)
    assert "services/llm/dlq.py" in changed, findings
    assert "traced_send(\n                self.kafka_bus.producer,\n" in changed[
        "services/llm/dlq.py"]
    assert "wait=False" in changed["services/llm/dlq.py"]
    assert not [f for f in findings if f[1] is Kind.FINDING]
