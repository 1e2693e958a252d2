"""Retrofit names the requirements a vendored kit needs and the repo does not declare.

The kit imports OpenTelemetry packages; a repo that had no kit may not depend on them. Every
run that vendors (or would vendor) a kit reports the missing pinned requirements once, as a
``vendored-kit`` finding on the service's pyproject.toml, which it never edits.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import tomllib
from pathlib import Path

from scaffold.cli import main
from scaffold.kit import kit_sources
from scaffold.resources import template_root
from scaffold.vendor import VENDORED_KIT_RULE, installed_kit_requirements, kit_requirements

REPO = Path(__file__).resolve().parents[2]
SENDER = (
    "from aiokafka import AIOKafkaProducer\n\n\n"
    "async def publish(producer: AIOKafkaProducer, topic, value):\n"
    "    await producer.send_and_wait(topic, value)\n"
)
IDLE = "def nothing_to_trace():\n    return 1\n"


def _service(root: Path, pyproject: str | None, module: str = SENDER) -> Path:
    (root / "orders").mkdir(parents=True)
    (root / "orders" / "__init__.py").write_text("")
    (root / "orders" / "bus.py").write_text(module)
    if pyproject is not None:
        (root / "pyproject.toml").write_text(pyproject)
    return root


def _notes(capsys, *args: object) -> tuple[int, list[dict]]:
    """Exit code and the vendored-kit findings (not the kit files) of a JSON run."""
    code = main(["retrofit", "--no-tests", "--format", "json", *map(str, args)])
    sites = json.loads(capsys.readouterr().out)["sites"]
    return code, [s for s in sites if s["rule_id"] == VENDORED_KIT_RULE and s["kind"] == "finding"]


def _named(note: dict) -> list[str]:
    return re.findall(r"[a-z-]+(?:==|>=)[0-9.a-z]+", note["message"])


def _distribution(requirement: str) -> str:
    return re.split(r"[=<>!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_vendoring_names_every_requirement_a_bare_project_lacks(tmp_path, capsys):
    pyproject = '[project]\nname = "orders"\ndependencies = [\n    "aiokafka==0.14.0",\n]\n'
    service = _service(tmp_path / "svc", pyproject)

    code, notes = _notes(capsys, service)

    assert code == 1
    assert [(n["path"], n["line"]) for n in notes] == [(f"{service}/pyproject.toml", 3)]
    assert _named(notes[0]) == list(kit_requirements())
    assert (service / "orders" / "tracekit" / "kafka.py").is_file()
    assert (service / "pyproject.toml").read_text() == pyproject, "the user's file is never edited"


def test_only_the_requirements_not_declared_in_any_spelling_are_named(tmp_path, capsys):
    declared = ['"OpenTelemetry_API>=1.40"', '"opentelemetry.sdk"',
                '"opentelemetry-exporter-otlp-proto-grpc==1.45.1; python_version >= \'3.11\'"']
    service = _service(tmp_path / "svc", '[project]\nname = "orders"\ndependencies = [\n'
                       + ",\n".join(declared) + "\n]\n")

    _, notes = _notes(capsys, service)

    declared_names = {
        "opentelemetry-api", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-grpc"}
    assert _named(notes[0]) == [
        spec for spec in kit_requirements() if _distribution(spec) not in declared_names]
    assert len(_named(notes[0])) == len(kit_requirements()) - 3


def test_poetry_dependencies_count_as_declared(tmp_path, capsys):
    table = "".join(f'"{_distribution(spec)}" = "*"\n' for spec in kit_requirements()[1:])
    service = _service(tmp_path / "svc", f'[tool.poetry.dependencies]\npython = "^3.11"\n{table}')

    _, notes = _notes(capsys, service)

    assert [_named(note) for note in notes] == [[kit_requirements()[0]]]


def test_a_project_declaring_every_requirement_gets_no_note(tmp_path, capsys):
    listed = ",\n".join(f'"{spec}"' for spec in kit_requirements())
    pyproject = f'[project]\nname = "orders"\ndependencies = [\n{listed}\n]\n'
    service = _service(tmp_path / "svc", pyproject)

    code, notes = _notes(capsys, service)

    assert code == 1  # the rewrite and the kit
    assert notes == []


def test_check_reports_the_note_without_writing_and_a_later_run_stays_quiet(tmp_path, capsys):
    service = _service(tmp_path / "svc", '[project]\nname = "orders"\n')

    assert len(_notes(capsys, service, "--check")[1]) == 1
    assert not (service / "orders" / "tracekit").exists()
    assert len(_notes(capsys, service)[1]) == 1
    assert _notes(capsys, service, "--check") == (0, []), "no kit to vendor: nothing to say"


def test_no_note_when_nothing_is_vendored(tmp_path, capsys):
    service = _service(tmp_path / "svc", '[project]\nname = "orders"\n', module=IDLE)

    assert _notes(capsys, service) == (0, [])


def test_without_a_pyproject_the_note_goes_on_the_kit(tmp_path, capsys):
    service = _service(tmp_path / "svc", None)

    _, notes = _notes(capsys, service)

    assert [(n["path"], n["line"]) for n in notes] == [
        (f"{service}/orders/tracekit/__init__.py", 1)]
    assert _named(notes[0]) == list(kit_requirements())


# -- the list itself: one place, in step with the kit, new services and the installed metadata --


def test_the_requirements_are_the_kit_extra_of_scaffolds_pyproject():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert kit_requirements() == tuple(extras["kit"])
    assert all(re.fullmatch(r"[a-z-]+==[0-9.a-z]+", spec) for spec in kit_requirements())
    assert "scaffold-tracing[kit]" in extras["test"]


def test_the_installed_metadata_lists_the_same_requirements():
    """What a wheel install reads; a stale editable install needs `pip install -e '.[test]'`."""
    assert sorted(installed_kit_requirements()) == sorted(kit_requirements())


def test_new_services_declare_the_same_pins():
    template = (template_root() / "templates" / "service" / "pyproject.toml.jinja").read_text()
    assert [spec for spec in kit_requirements() if f'"{spec}",' not in template] == []


def _module_owners() -> dict[str, str]:
    """Installed OpenTelemetry module -> the distribution that ships it."""
    owners = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"].lower()
        if not name.startswith("opentelemetry"):
            continue
        for file in dist.files or ():
            if file.suffix == ".py" and file.parts[0] == "opentelemetry":
                parts = file.with_suffix("").parts
                owners[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = name
    return owners


def test_every_opentelemetry_module_the_kit_imports_comes_from_a_listed_requirement():
    imported = set()  # modules, or for `from package import name` possibly package.name
    for text in kit_sources(package_name="orders").values():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    owners = _module_owners()
    needed = {owners[module] for module in imported if module in owners}

    assert needed == {_distribution(spec) for spec in kit_requirements()}
