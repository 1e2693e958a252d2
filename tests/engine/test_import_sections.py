"""Imports a rewrite needs land where isort (ruff's ``I`` rules) would put them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import libcst as cst
import pytest
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from scaffold.codemods import all_codemods
from scaffold.engine import Settings, process_source
from scaffold.engine.fast.imports import TopImportsAdder, place_in_sections

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CASES = sorted(path.parent for path in FIXTURES.glob("*/*/after.py"))


def _add(source: str, *imports: tuple[str, str | None, str | None],
         first_party: frozenset[str] = frozenset({"service"})) -> str:
    module = cst.parse_module(source)
    context = CodemodContext()
    for name, obj, alias in imports:
        AddImportsVisitor.add_needed_import(context, name, obj, asname=alias)
    return place_in_sections(module, module.visit(TopImportsAdder(context)), first_party).code


def _libcst(source: str, *imports: tuple[str, str | None, str | None]) -> str:
    context = CodemodContext()
    for name, obj, alias in imports:
        AddImportsVisitor.add_needed_import(context, name, obj, asname=alias)
    return cst.parse_module(source).visit(AddImportsVisitor(context)).code


def _isort_findings(source: str, first_party: list[str]) -> str:
    """ruff's import-sorting findings for ``source`` (empty: sorted)."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--select", "I",
         "--config", f"lint.isort.known-first-party={json.dumps(first_party)}",
         "--output-format", "concise", "--stdin-filename", "service/app.py", "-"],
        input=source, capture_output=True, text=True,
    )
    return done.stdout if done.returncode else ""


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}: {c.name}" for c in CASES])
def test_a_sorted_fixture_stays_sorted_after_its_rewrite(case):
    settings_file = case / "settings.json"
    settings = Settings(**json.loads(settings_file.read_text())) if settings_file.exists() \
        else Settings()
    first_party = sorted(settings.first_party)
    before = (case / "before.py").read_text()
    if _isort_findings(before, first_party):
        pytest.skip("the fixture's own imports are not in isort's order")
    codemod = next(rule for rule in all_codemods() if rule.ID == case.parent.name)
    result = process_source(before.encode(), "service/app.py", [codemod], settings)
    assert _isort_findings(result.updated, first_party) == "", result.updated


SORTED = '''"""A handler."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import ConsumerRecord
from opentelemetry.trace import SpanKind

from .config import Settings

LOG = logging.getLogger(__name__)
'''


def test_each_import_joins_its_section_in_order():
    updated = _add(SORTED, ("contextvars", None, None), ("zlib", None, None),
                   ("opentelemetry.trace", "get_tracer", None), ("attrs", "define", None),
                   ("service.tracekit", "restore_span", None))
    assert updated == '''"""A handler."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import zlib

from aiokafka import ConsumerRecord
from attrs import define
from opentelemetry.trace import SpanKind, get_tracer

from service.tracekit import restore_span

from .config import Settings

LOG = logging.getLogger(__name__)
'''
    assert _isort_findings(updated, ["service"]) == ""


def test_an_aliased_name_gets_a_line_of_its_own():
    updated = _add(SORTED, ("service.tracekit", "restore_span", None),
                   ("service.tracekit", "threads", "tracekit_threads"))
    assert ("from service.tracekit import restore_span\n"
            "from service.tracekit import threads as tracekit_threads\n\n"
            "from .config import Settings\n") in updated
    assert _isort_findings(updated, ["service"]) == ""


def test_a_first_section_takes_the_blank_line_and_section_comments_stay_put():
    source = '"""Doc."""\n\n# third party\nfrom aiokafka import ConsumerRecord\n\nX = 1\n'
    updated = _add(source, ("json", None, None), ("aiokafka", "TopicPartition", None))
    assert updated == ('"""Doc."""\n\nimport json\n\n# third party\n'
                       "from aiokafka import ConsumerRecord, TopicPartition\n\nX = 1\n")
    assert _isort_findings(updated, []) == ""


@pytest.mark.parametrize("source", [
    "import zlib\nimport asyncio\n\nX = 1\n",  # not in isort's order: not ours to reorder
    "import asyncio, zlib\n\nX = 1\n",  # a line isort would split
    "from aiokafka import *\n\nX = 1\n",
])
def test_a_block_not_in_isort_order_keeps_libcsts_placement(source):
    imports = (("contextvars", None, None), ("opentelemetry", "trace", "otel_trace"))
    assert _add(source, *imports) == _libcst(source, *imports)


def test_a_new_block_leaves_two_blank_lines_before_a_def():
    updated = _add("def handle():\n    pass\n", ("contextvars", None, None))
    assert updated == "import contextvars\n\n\ndef handle():\n    pass\n"
    assert _isort_findings(updated, []) == ""


def test_names_already_out_of_order_are_left_as_the_user_wrote_them():
    source = "from opentelemetry.trace import get_tracer, SpanKind\n\nX = 1\n"
    imports = (("opentelemetry.trace", "Link", None),)
    assert _add(source, *imports) == _libcst(source, *imports)


RUFF_CONFIGURED = '''\
import threading

from quart import Quart

from common_core.events import ESSAY_SUBMITTED

app = Quart(__name__)


def start(work):
    threading.Thread(target=work).start()
    return ESSAY_SUBMITTED
'''


@pytest.mark.parametrize("table", [
    '[tool.ruff.lint.isort]\nknown-first-party = ["common_core"]\n',
    '[tool.isort]\nknown_first_party = ["common_core"]\n',
])
def test_the_repos_own_first_party_packages_come_from_its_import_sorter_settings(
        tmp_path, table):
    """``common_core`` is first party only because the repo says so: with that read, the
    block counts as sorted and the new imports go into their sections."""
    from scaffold.api import Options, run

    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "svc"\nversion = "0"\n\n{table}')
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "app.py").write_text(RUFF_CONFIGURED)
    codemods = [rule for rule in all_codemods() if rule.ID == "thread-context"]
    result = run([tmp_path], codemods, Options(write=True, jobs=1))
    assert len(result.changed) == 1, result
    updated = (tmp_path / "svc" / "app.py").read_text()
    assert updated.startswith("import contextvars\nimport functools\nimport threading\n\n")
    assert _isort_findings(updated, ["common_core"]) == ""


def test_an_order_it_does_not_model_keeps_libcsts_placement(tmp_path):
    """``force-sort-within-sections`` sorts ``import x`` and ``from x`` lines together: not
    isort's default order, so the new lines go where LibCST puts them, not somewhere wrong."""
    from scaffold.api import Options, run

    (tmp_path / "pyproject.toml").write_text(
        "[tool.ruff]\nline-length = 120\n\n"  # the rewritten line stays one line
        '[tool.ruff.lint.isort]\nknown-first-party = ["common_core"]\n'
        "force-sort-within-sections = true\n")
    (tmp_path / "app.py").write_text(RUFF_CONFIGURED)
    codemods = [rule for rule in all_codemods() if rule.ID == "thread-context"]
    run([tmp_path], codemods, Options(write=True, jobs=1))
    assert (tmp_path / "app.py").read_text() == _libcst(
        RUFF_CONFIGURED, ("contextvars", None, None), ("functools", None, None)).replace(
        "threading.Thread(target=work)",
        "threading.Thread(target=functools.partial(contextvars.copy_context().run, work))")


def test_combine_as_imports_keeps_an_aliased_name_on_the_line():
    from scaffold.config import ImportSorting

    module = cst.parse_module(SORTED)
    context = CodemodContext()
    for name, obj, alias in (("service.tracekit", "restore_span", None),
                             ("service.tracekit", "threads", "tracekit_threads")):
        AddImportsVisitor.add_needed_import(context, name, obj, asname=alias)
    updated = place_in_sections(module, module.visit(TopImportsAdder(context)), {"service"},
                                ImportSorting(combine_as=True)).code
    assert ("from service.tracekit import restore_span, threads as tracekit_threads\n\n"
            "from .config import Settings\n") in updated


SERVICE_MODULE = '''"""A service module."""

import threading

from quart import Quart

from common_core.events import ESSAY_SUBMITTED
from services.grading.config import settings

from .protocols import Grader

app = Quart(__name__)


def start(work):
    threading.Thread(target=work).start()
    return ESSAY_SUBMITTED, settings, Grader
'''


def _ruff_in(repo: Path, path: Path) -> str:
    """ruff's import-sorting findings for a file of ``repo`` under the repo's own settings."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "I",
         "--output-format", "concise", str(path)],
        cwd=repo, capture_output=True, text=True,
    )
    return done.stdout if done.returncode else ""


def test_a_file_is_sorted_by_the_ruff_settings_that_govern_it(tmp_path):
    """A monorepo: [tool.scaffold] at the root, a service whose own pyproject.toml has the
    ruff settings (``common_core`` first party there only); ruff reads the nearest one, and so
    does the placement of added imports."""
    from scaffold.api import Options, run

    (tmp_path / "pyproject.toml").write_text(
        '[tool.scaffold]\nselect = ["thread-context"]\n\n[tool.ruff]\nline-length = 100\n')
    service = tmp_path / "services" / "grading"  # no package: no kit, the stdlib's helpers
    service.mkdir(parents=True)
    (service / "pyproject.toml").write_text(
        '[tool.ruff.lint.isort]\nknown-first-party = ["services", "common_core"]\n')
    (service / "app.py").write_text(SERVICE_MODULE)
    assert _ruff_in(tmp_path, service / "app.py") == ""
    codemods = [rule for rule in all_codemods() if rule.ID == "thread-context"]
    result = run([tmp_path], codemods, Options(write=True, jobs=1))
    assert len(result.changed) == 1, result
    updated = (service / "app.py").read_text()
    assert "import contextvars\nimport functools\nimport threading\n" in updated
    assert _ruff_in(tmp_path, service / "app.py") == "", updated


def test_ruffs_source_folders_and_own_package_count_as_first_party(tmp_path):
    from scaffold.config import ImportSorting, ruff_settings_for

    (tmp_path / "pyproject.toml").write_text('[tool.ruff]\nsrc = [".", "lib"]\n')
    (tmp_path / "services" / "grading").mkdir(parents=True)
    (tmp_path / "services" / "__init__.py").write_text("")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "shared.py").write_text("")
    (tmp_path / "vendor" / "helperlib").mkdir(parents=True)
    app = tmp_path / "services" / "grading" / "app.py"
    app.write_text("")
    sorting = ruff_settings_for(app, ImportSorting())
    assert sorting.line_length == 88  # ruff's default
    assert [sorting.is_first_party(name) for name in ("services", "shared", "helperlib",
                                                       "vendor", "grading")] == [
        True, True, False, True, False]
    outside = tmp_path.parent / "elsewhere.py"
    assert ruff_settings_for(outside, ImportSorting(combine_as=True)).combine_as
