"""Lines a rewrite made too long are split as ruff's formatter splits them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from scaffold.codemods import all_codemods
from scaffold.engine.layout import fit_changed_lines

BEFORE = '''async def fetch(session, endpoint, timeout, text):
    async with session.get(endpoint, timeout=timeout) as response:
        return await response.json()


async def check(session, url, text):
    async with session.post(
        url, json={"text": text}
    ) as response:
        return response
'''

AFTER = '''async def fetch(session, endpoint, timeout, text):
    async with session.get(endpoint, timeout=timeout, headers=trace_headers) as response:
        return await response.json()


async def check(session, url, text):
    async with session.post(
        url, json={"text": text}, headers=trace_headers, cookies=session_cookies
    ) as response:
        return response
'''

FITTED = '''async def fetch(session, endpoint, timeout, text):
    async with session.get(
        endpoint, timeout=timeout, headers=trace_headers
    ) as response:
        return await response.json()


async def check(session, url, text):
    async with session.post(
        url,
        json={"text": text},
        headers=trace_headers,
        cookies=session_cookies,
    ) as response:
        return response
'''


def _ruff_format_diff(source: str, line_length: int) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--isolated", "--diff",
         "--line-length", str(line_length), "-"],
        input=source, capture_output=True, text=True,
    )
    return done.stdout


def test_changed_lines_too_long_are_split_as_the_formatter_splits_them():
    fitted = fit_changed_lines(BEFORE, AFTER, 72)
    assert fitted == FITTED
    assert ast.dump(ast.parse(fitted)) == ast.dump(ast.parse(AFTER))
    assert _ruff_format_diff(fitted, 72) == ""


@pytest.mark.parametrize("line", [
    "    x = compute(alpha, beta, gamma, delta, epsilon)  # a line the rewrite did not touch",
    "    values = sorted(item for item in collection_of_items if item.is_valid())",
    "    handler = register(lambda event, context: dispatch(event, context))",
    '    message = "a long string without any bracket to split it at, none at all"',
])
def test_lines_it_cannot_split_safely_stay_as_they_are(line):
    before = "def f():\n    pass\n" if "not touch" not in line else f"def f():\n{line}\n"
    after = f"def f():\n{line}\n"
    fitted = fit_changed_lines(before, after, 60)
    if "lambda" in line or "for" in line:  # one element: its contents on a line of their own
        assert ast.dump(ast.parse(fitted)) == ast.dump(ast.parse(after))
        assert "lambda event, context" in fitted or "for item in" in fitted
    else:
        assert fitted == after


def test_a_rewrite_in_a_repo_configuring_ruff_keeps_its_line_length(tmp_path: Path):
    from scaffold.api import Options, run

    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 79\n")
    source = (
        "import threading\n\n\n"
        "def start(poll_the_registry):\n"
        "    threading.Thread(target=poll_the_registry, daemon=True).start()\n"
    )
    (tmp_path / "poller.py").write_text(source)
    codemods = [rule for rule in all_codemods() if rule.ID == "thread-context"]
    result = run([tmp_path], codemods, Options(write=True, jobs=1))
    assert len(result.changed) == 1, result
    updated = (tmp_path / "poller.py").read_text()
    assert max(len(line) for line in updated.splitlines()) <= 79, updated
    assert ("functools.partial(\n"
            "            contextvars.copy_context().run, poll_the_registry\n") in updated
    assert _ruff_format_diff(updated, 79) == "", updated
