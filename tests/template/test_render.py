"""What the template renders for each answer set, without installing it (fast)."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from scaffold import __version__
from scaffold.cli import main
from scaffold.kit import kit_sources, kit_template_names
from scaffold.new_service import create_service
from scaffold.resources import template_root

from .conftest import answers_of

SERVICE_TEMPLATE = template_root() / "templates" / "service"


def _files(root: Path) -> set[str]:
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and ".git" not in path.parts
    }


def test_every_file_is_rendered_and_nothing_compiled_leaks(rendered):
    _, project = rendered
    files = _files(project)
    assert not [name for name in files if name.endswith(".jinja")]
    assert not [name for name in files if "__pycache__" in name or name.endswith(".pyc")]
    for name in files:
        text = (project / name).read_text()
        assert "{{" not in text and "{%" not in text, f"unrendered Jinja in {name}"


def test_files_follow_the_answers(rendered):
    name, project = rendered
    answers = answers_of(name)
    package = project / str(answers["package_name"])
    http = answers["framework"] != "worker"
    for path, expected in [
        (package / "__main__.py", True),
        (package / "service.py", True),
        (package / "app.py", http),
        (package / "jobs.py", answers["redis_queue"]),
        (project / "tests" / "test_app.py", http),
        (project / "tests" / "test_jobs.py", answers["redis_queue"]),
        (project / "tests" / "otlp_grpc_receiver.py", answers["otlp_protocol"] == "grpc"),
        (project / "Makefile", True),
        (project / "compose.yaml", True),
        (project / "README.md", True),
        (project / ".copier-answers.yml", True),
    ]:
        assert path.is_file() == expected, path


def test_python_files_parse_and_init_tracing_never_runs_at_import(rendered):
    _, project = rendered
    for path in project.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        at_import = [
            node
            for statement in tree.body
            if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            for node in ast.walk(statement)
            if isinstance(node, ast.Call)
        ]
        called = {getattr(node.func, "id", getattr(node.func, "attr", "")) for node in at_import}
        assert "init_tracing" not in called, path


def test_the_kit_is_the_kit_templates_rendered_for_this_package(rendered):
    """New services and retrofit render the same Jinja sources, byte for byte."""
    name, project = rendered
    answers = answers_of(name)
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    package = str(answers["package_name"])
    expected = kit_sources(package_name=package, kit_version=recorded["_commit"])
    kit_dir = project / package / "tracekit"
    assert {path.name: path.read_text() for path in kit_dir.iterdir()} == expected


def test_answers_file_records_the_answers_and_the_template_version(rendered, template_snapshot):
    name, project = rendered
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert recorded["_src_path"] == str(template_snapshot)
    assert recorded["_commit"]
    for key, value in answers_of(name).items():
        assert recorded[key] == value, key
    assert "kit_version" not in recorded  # computed from the template version at every render


def test_pins_match_this_repository(rendered):
    """The generated service pins the same OpenTelemetry set (and tools) as scaffold itself."""
    _, project = rendered
    ours = _pins(template_root() / "pyproject.toml")
    theirs = _pins(project / "pyproject.toml")
    shared = set(ours) & set(theirs)
    assert {"opentelemetry-sdk", "aiokafka", "pydantic", "pytest", "ruff", "mypy"} <= shared
    assert {package: theirs[package] for package in shared} == {
        package: ours[package] for package in shared
    }
    assert all(version for version in theirs.values()), "every dependency is pinned"


def _pins(pyproject: Path) -> dict[str, str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project.get("dependencies", []))
    for group in project.get("optional-dependencies", {}).values():
        requirements += group
    pins = {}
    for requirement in requirements:
        package, _, version = requirement.partition("==")
        pins[package.strip().lower()] = version.strip()
    return pins


def test_compose_file_runs_jaeger_kafka_and_the_service(rendered):
    name, project = rendered
    answers = answers_of(name)
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    services = compose["services"]
    assert {"4317:4317", "4318:4318", "16686:16686"} <= set(services["jaeger"]["ports"])
    assert "kafka" in services
    assert ("redis" in services) == answers["redis_queue"]
    service = services[str(answers["service_name"]).replace("_", "-")]
    environment = service["environment"]
    assert environment["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"
    assert environment["OTEL_EXPORTER_OTLP_PROTOCOL"] == answers["otlp_protocol"]
    port = "4317" if answers["otlp_protocol"] == "grpc" else "4318"
    assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://jaeger:{port}"
    assert set(service["depends_on"]) >= {"jaeger", "kafka"}


def test_makefile_offers_setup_test_lint_and_run(rendered):
    _, project = rendered
    targets = {
        line.split(":", 1)[0]
        for line in (project / "Makefile").read_text().splitlines()
        if line and not line[0].isspace() and ":" in line and "=" not in line.split(":", 1)[0]
    }
    assert {"setup", "test", "lint", "run"} <= targets


def test_service_template_includes_every_kit_module_and_copies_none():
    """Each kit module is one ``{% include %}`` of its template: the kit is never copied."""
    kit_templates = sorted(Path(name).name for name in kit_template_names())
    included = SERVICE_TEMPLATE / "{{package_name}}" / "tracekit"
    assert sorted(path.name for path in included.iterdir()) == kit_templates
    for name in kit_templates:
        assert (included / name).read_text() == f'{{% include "templates/kit/{name}" %}}'


def test_template_sources_are_all_jinja_files():
    """Only ``.jinja`` files are rendered; a plain ``.py`` here would be copied as is."""
    plain = [
        path.relative_to(SERVICE_TEMPLATE).as_posix()
        for path in SERVICE_TEMPLATE.rglob("*")
        if path.is_file() and path.suffix == ".py"
    ]
    assert plain == []


def test_copier_cli_copies_from_the_repository_path(tmp_path):
    """``copier copy --trust <repo> DEST``: the folder name is the default service name."""
    dest = tmp_path / "services" / "grading_service"

    subprocess.run(
        [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "--quiet",
         "--vcs-ref", "HEAD", str(template_root()), str(dest)],
        check=True, capture_output=True,
    )

    recorded = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert recorded["service_name"] == recorded["package_name"] == "grading_service"
    assert (dest / "grading_service" / "tracekit" / "kafka.py").is_file()


def test_make_new_service_passes_name_and_answers(tmp_path):
    dest = tmp_path / "grading_service"

    subprocess.run(
        ["make", "-C", str(template_root()), "new-service", "NAME=grading_service",
         f"DEST={dest}", "ANSWERS=framework=worker carrier=metadata"],
        check=True, capture_output=True,
    )

    recorded = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert (recorded["service_name"], recorded["framework"], recorded["carrier"]) == (
        "grading_service", "worker", "metadata",
    )


def test_without_git_the_kit_is_stamped_with_the_scaffold_version(tmp_path):
    """An installed wheel holds the templates as plain files: no git description to stamp."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(template_root() / "copier.yml", bundle)
    shutil.copytree(template_root() / "templates", bundle / "templates")

    service = create_service(tmp_path / "svc", defaults=True, template=bundle, quiet=True)

    header = (service / "svc" / "tracekit" / "tracing.py").read_text().splitlines()[0]
    assert f"scaffold {__version__} " in header


def test_generated_service_passes_scaffold_check(rendered, capsys):
    """The product's own checks and codemods find nothing to change in any generated service."""
    _, project = rendered

    code = main(["check", "--jobs", "1", "--format", "json", str(project)])

    report = json.loads(capsys.readouterr().out)
    listing = "\n".join(
        f"{site['path']}:{site['line']}: {site['rule_id']} {site['message']}"
        for site in report["sites"]
    )
    assert (code, report["sites"], report["files"]) == (0, [], []), listing
