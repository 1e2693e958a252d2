"""Answer sets for the service template, and rendering through ``scaffold new``'s library API.

Four answer sets cover every choice of every question: each framework, carrier and OTLP
protocol, with and without the Redis queue, one or several consumed topics, a package name
that differs from the service name, a sampler ratio below 1.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scaffold.new_service import create_service
from scaffold.resources import template_root

PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"

ANSWER_SETS: dict[str, dict[str, object]] = {
    "defaults": {},
    "quart-headers-http-redis": {
        "service_name": "essay_intake",
        "framework": "quart",
        "carrier": "headers",
        "otlp_protocol": "http/protobuf",
        "redis_queue": True,
    },
    "fastapi-metadata-grpc-redis": {
        "service_name": "grading_service",
        "framework": "fastapi",
        "carrier": "metadata",
        "otlp_protocol": "grpc",
        "redis_queue": True,
        "sampler_ratio": 0.5,
    },
    "worker-both-http": {
        "service_name": "feedback_worker",
        "package_name": "feedback",
        "framework": "worker",
        "carrier": "both",
        "otlp_protocol": "http/protobuf",
        "consume_topics": ["essay.graded", "essay.regraded"],
        "produce_topic": "feedback.ready",
        "consumer_group": "feedback-workers",
    },
}

# Every answer the defaults set would take, as copier.yml declares them.
DEFAULTS: dict[str, object] = {
    "framework": "quart",
    "carrier": "both",
    "otlp_protocol": "grpc",
    "redis_queue": False,
    "sampler_ratio": 1.0,
}


def answers_of(name: str) -> dict[str, object]:
    """The full answers of a set: its own, then the defaults, on this test run's Python."""
    answers = {**DEFAULTS, "python_version": PYTHON_VERSION, **ANSWER_SETS[name]}
    answers.setdefault("service_name", "default_service")
    answers.setdefault("package_name", answers["service_name"])
    return answers


def render(dest: Path, name: str, template: Path) -> Path:
    """Generate the service of an answer set from ``template`` (a template repository)."""
    data = {key: value for key, value in answers_of(name).items() if key in _asked(name)}
    return create_service(dest, data=data, defaults=True, template=template, quiet=True)


def _asked(name: str) -> set[str]:
    # The defaults set answers nothing but its Python: the template's defaults are under test.
    return set(ANSWER_SETS[name]) | {"python_version"}


@pytest.fixture(scope="session")
def template_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's template (``copier.yml``, ``templates/``) committed to a git repository.

    Copier renders a local git template from a clone, so users get a template version; from
    this checkout it would also copy the whole working tree, which other tools may be writing
    while the tests run. The snapshot is the same template, rendered the same way.
    """
    repo = tmp_path_factory.mktemp("template")
    shutil.copy(template_root() / "copier.yml", repo)
    shutil.copytree(template_root() / "templates", repo / "templates")
    for args in (["init", "--quiet"], ["add", "--all"], ["commit", "--quiet", "-m", "snapshot"]):
        subprocess.run(
            ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
            cwd=repo, check=True, capture_output=True,
        )
    return repo


@pytest.fixture(scope="module", params=sorted(ANSWER_SETS))
def rendered(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    template_snapshot: Path,
) -> tuple[str, Path]:
    """``(answer set name, generated project folder)``, once per module and answer set."""
    name = request.param
    answers = answers_of(name)
    dest = tmp_path_factory.mktemp(name) / str(answers["service_name"])
    return name, render(dest, name, template_snapshot)
