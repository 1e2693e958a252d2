"""envelope-inject across files: the helper module's own ``inject_trace_context`` signature
decides whether an envelope built with a dict here needs the ``is None`` guard to type-check.

HuleEdu's ``EventEnvelope.metadata`` is ``Optional[Dict]`` and its helper takes
``carrier: Dict[str, Any]``: passing ``envelope.metadata`` bare is a mypy ``arg-type`` error
under the repo's own settings, although the dict was built two lines above.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from scaffold.api import Options, run
from scaffold.codemods.envelope_inject import EnvelopeInject

CONFIG = """\
[tool.scaffold]
helper-module = "shared.observability"
"""

HELPER = """\
    from typing import Any, Dict, Optional

    from opentelemetry.propagate import inject


    def inject_trace_context(carrier: {annotation}) -> None:
        inject(carrier)
    """

# services/batch_orchestrator_service/implementations/nlp_initiator_impl.py, trimmed
PUBLISHER = """\
    from typing import Any, Dict, Optional

    from pydantic import BaseModel


    class EventEnvelope(BaseModel):
        event_type: str
        metadata: Optional[Dict[str, Any]] = None


    class Initiator:
        def __init__(self, kafka_bus) -> None:
            self.kafka_bus = kafka_bus

        async def initiate(self, user_id: str) -> None:
            envelope = EventEnvelope(event_type="nlp.initiate", metadata={"user_id": user_id})
            await self.kafka_bus.publish("nlp", envelope)
    """


def make_repo(tmp_path: Path, annotation: str) -> Path:
    root = tmp_path / "repo"
    files = {
        "pyproject.toml": '[project]\nname = "repo"\nversion = "1"\n' + CONFIG,
        "shared/__init__.py": "",
        "shared/observability.py": HELPER.replace("{annotation}", annotation),
        "services/__init__.py": "",
        "services/initiator.py": PUBLISHER,
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.mark.parametrize(("annotation", "guarded"), [
    ("Dict[str, Any]", True),
    ("Optional[Dict[str, Any]]", False),
    ("dict[str, Any] | None", False),
])
def test_the_guard_is_written_when_the_helper_takes_no_none(tmp_path, annotation, guarded):
    root = make_repo(tmp_path, annotation)
    result = run([root], [EnvelopeInject], Options(jobs=1))
    changed = {Path(r.path).relative_to(root).as_posix(): r.updated for r in result.changed}
    updated = changed["services/initiator.py"]
    assert "inject_trace_context(envelope.metadata)" in updated
    guard = "if envelope.metadata is None:\n            envelope.metadata = {}"
    assert (guard in updated) is guarded
