"""A write run adds what the rewritten code now imports to the dependencies its project declares.

Each manifest flavour is edited in place (exact bytes: comments, order and list style kept),
never with a pin that conflicts with what the project locks; ``--check``/``--diff`` only list
the edit, ``--no-deps`` turns it into a finding, and a second run has nothing to add. Every
test runs the real CLI in-process over a small project in a temporary folder.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from scaffold.cli import main
from scaffold.dependencies import (
    API,
    API_FLOOR,
    RULE,
    SETUP_API_FLOOR,
    SETUP_FLOORS,
    floors_for,
    needed_distributions,
    version_key,
)

SENDER = textwrap.dedent("""\
    from aiokafka import AIOKafkaProducer


    async def publish(producer: AIOKafkaProducer, topic, value):
        await producer.send_and_wait(topic, value)
""")
THREADS = textwrap.dedent("""\
    import threading


    def run(work):
        threading.Thread(target=work).start()
""")
API_SPEC = f"{API}>={API_FLOOR}"


def _project(root: Path, files: dict[str, str], module: str = SENDER) -> Path:
    """A project folder holding ``files`` (manifests) and the package ``orders``."""
    (root / "orders").mkdir(parents=True)
    (root / "orders" / "__init__.py").write_text("")
    (root / "orders" / "bus.py").write_text(module)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text.encode())
    return root


def _run(capsys, *args: object) -> tuple[int, list[dict]]:
    """Exit code and the declared-dependencies sites of a JSON retrofit run."""
    code = main(["retrofit", "--no-tests", "--format", "json", *map(str, args)])
    sites = json.loads(capsys.readouterr().out)["sites"]
    return code, [site for site in sites if site["rule_id"] == RULE]


PEP621 = textwrap.dedent("""\
    [project]
    name = "orders"  # the service
    dependencies = [
        # the broker client
        "aiokafka==0.14.0",  # pinned on purpose
        "pydantic>=2",
    ]

    [tool.ruff]
    line-length = 100
""")
PEP621_AFTER = PEP621.replace(
    '    "pydantic>=2",\n', f'    "pydantic>=2",\n    "{API_SPEC}",\n')

CASES = {
    "pep 621 list, one per line": ("pyproject.toml", PEP621, PEP621_AFTER),
    "pep 621 list on one line": (
        "pyproject.toml",
        '[project]\nname = "orders"\ndependencies = ["aiokafka"]\n',
        f'[project]\nname = "orders"\ndependencies = ["aiokafka", "{API_SPEC}"]\n'),
    "pep 621 without a dependencies key": (
        "pyproject.toml",
        '[project]\nname = "orders"\nversion = "1"\n\n[tool.x]\na = 1\n',
        f'[project]\nname = "orders"\nversion = "1"\ndependencies = ["{API_SPEC}"]\n\n'
        '[tool.x]\na = 1\n'),
    "pdm: the dev group is not the list": (
        "pyproject.toml",
        '[project]\nname = "orders"\ndependencies = [\n    "aiokafka",\n]\n\n'
        '[tool.pdm.dev-dependencies]\ntest = [\n    "opentelemetry-api",\n]\n',
        f'[project]\nname = "orders"\ndependencies = [\n    "aiokafka",\n    "{API_SPEC}",\n]\n\n'
        '[tool.pdm.dev-dependencies]\ntest = [\n    "opentelemetry-api",\n]\n'),
    "poetry table": (
        "pyproject.toml",
        '[tool.poetry]\nname = "orders"\n\n[tool.poetry.dependencies]\npython = "^3.11"\n'
        'aiokafka = "^0.14"  # broker\n\n[tool.poetry.group.dev.dependencies]\npytest = "*"\n',
        '[tool.poetry]\nname = "orders"\n\n[tool.poetry.dependencies]\npython = "^3.11"\n'
        f'aiokafka = "^0.14"  # broker\n{API} = ">={API_FLOOR}"\n\n'
        '[tool.poetry.group.dev.dependencies]\npytest = "*"\n'),
    "requirements.txt without a final newline": (
        "requirements.txt",
        "# runtime\naiokafka==0.14.0\n-r common.txt",
        f"# runtime\naiokafka==0.14.0\n-r common.txt\n{API_SPEC}\n"),
    "requirements folder": (
        "requirements/base.txt",
        "aiokafka==0.14.0\n",
        f"aiokafka==0.14.0\n{API_SPEC}\n"),
}


@pytest.mark.parametrize("name, before, after", CASES.values(), ids=CASES.keys())
def test_a_write_run_adds_the_api_to_the_list_the_project_declares(tmp_path, capsys, name,
                                                                    before, after):
    project = _project(tmp_path / "svc", {name: before})

    code, sites = _run(capsys, project)

    assert code == 1
    assert (project / name).read_bytes() == after.encode()
    assert [(site["path"], site["kind"]) for site in sites] == [(f"{project}/{name}", "change")]
    assert API_SPEC in sites[0]["message"] and "orders/bus.py" in sites[0]["message"]
    assert _run(capsys, project, "--check") == (0, []), "a second run has nothing to add"


def test_the_line_of_the_change_is_the_dependencies_key(tmp_path, capsys):
    project = _project(tmp_path / "svc", {"pyproject.toml": PEP621})

    _, sites = _run(capsys, project, "--check")

    assert [site["line"] for site in sites] == [3]


@pytest.mark.parametrize("mode", ["--check", "--diff"])
def test_check_and_diff_list_the_edit_and_never_write(tmp_path, capsys, mode):
    project = _project(tmp_path / "svc", {"pyproject.toml": PEP621})

    code = main(["retrofit", "--no-tests", mode, str(project)])
    out = capsys.readouterr().out

    assert code == 1
    assert (project / "pyproject.toml").read_text() == PEP621
    assert not (project / "orders" / "tracekit").exists()
    assert f"pyproject.toml:3:1: {RULE} adds {API_SPEC} to [project] dependencies" in out
    if mode == "--diff":
        assert f'+    "{API_SPEC}",\n' in out


def test_no_deps_leaves_a_finding_naming_what_to_add_and_where(tmp_path, capsys):
    project = _project(tmp_path / "svc", {"pyproject.toml": PEP621})

    code, sites = _run(capsys, project, "--no-deps")

    assert code == 1  # the rewrite and the kit
    assert (project / "pyproject.toml").read_text() == PEP621
    assert [(site["kind"], site["line"]) for site in sites] == [("finding", 3)]
    assert f"add {API_SPEC} to [project] dependencies" in sites[0]["message"]


def test_the_config_key_turns_the_edit_into_a_finding(tmp_path, capsys):
    manifest = PEP621 + "\n[tool.scaffold]\nadd-dependencies = false\n"
    project = _project(tmp_path / "svc", {"pyproject.toml": manifest})

    _, sites = _run(capsys, project)

    assert (project / "pyproject.toml").read_text() == manifest
    assert [site["kind"] for site in sites] == ["finding"]


def test_a_locked_newer_line_is_kept_the_bound_does_not_conflict(tmp_path, capsys):
    lock = ('[metadata]\nlock_version = "4.5.0"\n\n[[package]]\nname = "opentelemetry-api"\n'
            'version = "1.45.2"\n\n[[package]]\nname = "opentelemetry-sdk"\nversion = "1.45.2"\n')
    project = _project(tmp_path / "svc", {"pyproject.toml": PEP621, "pdm.lock": lock})

    _, sites = _run(capsys, project)

    assert (project / "pyproject.toml").read_text() == PEP621_AFTER
    assert "==" not in API_SPEC and version_key("1.45.2") >= version_key(API_FLOOR)
    assert "pdm.lock has opentelemetry-api 1.45.2, which satisfies it" in sites[0]["message"]
    assert "(pdm lock)" in sites[0]["message"]
    assert (project / "pdm.lock").read_text() == lock


def test_a_lock_older_than_the_floor_is_reported_not_edited(tmp_path, capsys):
    lock = '[[package]]\nname = "opentelemetry-api"\nversion = "1.10.0"\n'
    project = _project(tmp_path / "svc", {"pyproject.toml": PEP621, "poetry.lock": lock})

    _, sites = _run(capsys, project)

    assert (project / "pyproject.toml").read_text() == PEP621
    assert [site["kind"] for site in sites] == ["finding"]
    assert f"opentelemetry-api 1.10.0, older than the {API_FLOOR}" in sites[0]["message"]


def test_a_pinned_sdk_fixes_the_api_line_too(tmp_path, capsys):
    requirements = "opentelemetry-sdk==1.15.0\n"
    project = _project(tmp_path / "svc", {"requirements.txt": requirements})

    _, sites = _run(capsys, project)

    # the SDK brings the API, so nothing is missing: the pin is the repo's own business
    assert sites == []
    assert (project / "requirements.txt").read_text() == requirements


@pytest.mark.parametrize("declared", [
    '"OpenTelemetry_API>=1.30"', '"opentelemetry-api==1.45.2; python_version >= \'3.11\'"',
    '"opentelemetry-sdk"', '"opentelemetry-exporter-otlp"',
], ids=["the api in another spelling", "the api pinned with a marker", "the sdk",
        "the otlp exporter"])
def test_a_project_that_already_gets_the_api_is_left_alone(tmp_path, capsys, declared):
    manifest = f'[project]\nname = "orders"\ndependencies = [{declared}]\n'
    project = _project(tmp_path / "svc", {"pyproject.toml": manifest})

    code, sites = _run(capsys, project)

    assert code == 1  # the rewrite itself
    assert sites == []
    assert (project / "pyproject.toml").read_text() == manifest


@pytest.mark.parametrize("root_mark", [".git", "pdm.lock"],
                         ids=["a git repository", "a monorepo root without git"])
def test_a_first_party_library_declaring_the_api_counts(tmp_path, capsys, root_mark):
    repo = tmp_path / "repo"
    (repo / "libs" / "shared").mkdir(parents=True)
    if root_mark == ".git":
        (repo / ".git").mkdir()
    else:
        (repo / root_mark).write_text("")
    (repo / "libs" / "shared" / "pyproject.toml").write_text(
        '[project]\nname = "acme_shared"\ndependencies = ["opentelemetry-api"]\n')
    manifest = '[project]\nname = "orders"\ndependencies = [\n    "acme-shared",\n]\n'
    service = _project(repo / "services" / "orders", {"pyproject.toml": manifest})

    _, sites = _run(capsys, service)

    assert sites == []
    assert (service / "pyproject.toml").read_text() == manifest


def test_a_thread_hand_off_needs_nothing_new(tmp_path, capsys):
    manifest = '[project]\nname = "orders"\n'
    project = _project(tmp_path / "svc", {"pyproject.toml": manifest}, module=THREADS)

    code, sites = _run(capsys, project)

    assert code == 1
    assert "TracedThread" in (project / "orders" / "bus.py").read_text()
    assert sites == []
    assert (project / "pyproject.toml").read_text() == manifest


def test_a_file_without_a_project_gets_a_finding(tmp_path, capsys):
    project = _project(tmp_path / "svc", {})

    _, sites = _run(capsys, project)

    assert [(site["path"], site["kind"]) for site in sites] == [
        (f"{project}/orders/bus.py", "finding")]
    assert API_SPEC in sites[0]["message"]


def test_dynamic_dependencies_are_reported_not_edited(tmp_path, capsys):
    manifest = '[project]\nname = "orders"\ndynamic = ["dependencies"]\n'
    project = _project(tmp_path / "svc", {"pyproject.toml": manifest})

    _, sites = _run(capsys, project)

    assert [site["kind"] for site in sites] == ["finding"]
    assert "dynamic" in sites[0]["message"]
    assert (project / "pyproject.toml").read_text() == manifest


def test_setuptools_dynamic_dependencies_from_a_file_edit_that_file(tmp_path, capsys):
    manifest = ('[project]\nname = "orders"\ndynamic = ["dependencies"]\n\n'
                '[tool.setuptools.dynamic]\ndependencies = {file = ["deps.txt"]}\n')
    project = _project(tmp_path / "svc", {"pyproject.toml": manifest, "deps.txt": "aiokafka\n"})

    _run(capsys, project)

    assert (project / "deps.txt").read_text() == f"aiokafka\n{API_SPEC}\n"
    assert (project / "pyproject.toml").read_text() == manifest


# -- what a rewritten file needs, from what it imports --

SETUP = {API, *SETUP_FLOORS}
NEEDS = {
    "kit threads: the standard library": (
        "from orders.tracekit import TracedThread\n", set()),
    "kit threads module": ("from orders.tracekit.threads import submit\n", set()),
    "kit threads module by name": ("from orders.tracekit import threads as kt\n", set()),
    "kit propagation helpers": ("from orders.tracekit import inject_headers\n", {API}),
    "kit envelope module": ("from orders.tracekit.envelope import use_trace_context\n", {API}),
    "api modules": ("from opentelemetry import context\nfrom opentelemetry.trace import "
                    "SpanKind\nimport opentelemetry.propagate\n", {API}),
    "tracing set-up": ("from orders.tracekit import init_tracing\n", SETUP),
    "tracing set-up by module": ("import orders.tracekit.tracing\n"
                                 "orders.tracekit.tracing.init_tracing('svc')\n", SETUP),
    "the helper library": ("from acme.observability import inject_trace_context\n", set()),
    "a configured kit": ("from platform_kit import traced_send\n", {API}),
}


@pytest.mark.parametrize("added, expected", NEEDS.values(), ids=NEEDS.keys())
def test_what_a_rewritten_file_needs_comes_from_what_it_now_imports(added, expected):
    original = "import asyncio\n"
    assert needed_distributions(original, original + added, ["platform_kit"]) == expected


def test_imports_the_file_already_had_need_nothing_new():
    original = "from opentelemetry import trace\n"
    assert needed_distributions(original, original + "from opentelemetry import context\n") \
        == set()


APP = textwrap.dedent("""\
    import fastapi

    SERVICE_NAME = "grading_service"


    def create_app():
        app = fastapi.FastAPI()

        @app.on_event("startup")
        async def connect() -> None:
            app.state.ready = True

        return app
""")


def test_tracing_set_up_adds_the_sdk_line_the_kit_sets_up_with(tmp_path, capsys):
    manifest = '[project]\nname = "orders"\ndependencies = [\n    "fastapi",\n]\n'
    project = _project(tmp_path / "svc", {"pyproject.toml": manifest}, module=APP)

    _, sites = _run(capsys, project)

    assert "init_tracing(SERVICE_NAME)" in (project / "orders" / "bus.py").read_text()
    added = {API: SETUP_API_FLOOR, **SETUP_FLOORS}
    assert (project / "pyproject.toml").read_text() == manifest.replace(
        '    "fastapi",\n',
        '    "fastapi",\n' + "".join(f'    "{name}>={added[name]}",\n' for name in sorted(added)))
    assert [site["kind"] for site in sites] == ["change"]


def test_tracing_set_up_over_an_older_pinned_line_is_a_finding(tmp_path, capsys):
    manifest = ('[project]\nname = "orders"\n'
                'dependencies = ["fastapi", "opentelemetry-api==1.22.0"]\n')
    project = _project(tmp_path / "svc", {"pyproject.toml": manifest}, module=APP)

    _, sites = _run(capsys, project)

    assert (project / "pyproject.toml").read_text() == manifest
    assert [site["kind"] for site in sites] == ["finding"]
    assert f"opentelemetry-api 1.22.0, older than the {SETUP_API_FLOOR}" in sites[0]["message"]


def test_the_api_floor_rises_only_with_the_sdk():
    assert floors_for({API}) == {API: API_FLOOR}
    assert floors_for({API, *SETUP_FLOORS}) == {API: SETUP_API_FLOOR, **SETUP_FLOORS}


def test_requirements_included_with_r_count_and_constraints_are_pins(tmp_path, capsys):
    files = {"requirements.txt": "-r common.txt\n-c constraints.txt\naiokafka\n",
             "common.txt": "opentelemetry-api\n"}
    project = _project(tmp_path / "svc", files)
    assert _run(capsys, project)[1] == [], "common.txt declares the API"

    files = {"requirements.txt": "-c constraints.txt\naiokafka\n",
             "constraints.txt": "opentelemetry-api==1.9.0\n"}
    project = _project(tmp_path / "other", files)
    _, sites = _run(capsys, project)
    assert [site["kind"] for site in sites] == ["finding"]
    assert "opentelemetry-api 1.9.0, older than" in sites[0]["message"]
    assert (project / "requirements.txt").read_text() == files["requirements.txt"]
