"""Answer sets for the service template, and rendering through ``scaffold new``'s library API.

Four answer sets cover every choice of every question: each framework, carrier and OTLP
protocol, with and without the Redis queue, one or several consumed topics, a package name
that differs from the service name, a sampler ratio below 1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
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


def project_env() -> dict[str, str]:
    """The environment of a generated project's own tools: nothing of this run's venv or OTEL_*."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"} and not key.startswith("OTEL_")
    }


def make(project: Path, target: str) -> None:
    """``make TARGET`` in a generated project, failing with the end of its output."""
    done = subprocess.run(
        ["make", target], cwd=project, env=project_env(), capture_output=True, text=True
    )
    output = f"{done.stdout[-6000:]}\n{done.stderr[-4000:]}"
    assert done.returncode == 0, f"make {target} failed:\n{output}"


@pytest.fixture(scope="session")
def set_up_project(
    tmp_path_factory: pytest.TempPathFactory, template_snapshot: Path
) -> Callable[[str], Path]:
    """``set_up_project(answer set name)``: its project generated and ``make setup`` done.

    Once per answer set and session: the generated-project tests and the consumer-group tests
    share one project and its venv (``.venv/bin/python``), which keeps CI time down.
    """
    projects: dict[str, Path] = {}

    def set_up(name: str) -> Path:
        if name not in projects:
            answers = answers_of(name)
            dest = tmp_path_factory.mktemp(f"setup-{name}") / str(answers["service_name"])
            project = render(dest, name, template_snapshot)
            make(project, "setup")
            projects[name] = project
        return projects[name]

    return set_up
