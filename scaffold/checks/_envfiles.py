"""Reading ``VAR=value`` settings out of env files and compose files, without a YAML parser.

Both ``.env`` lines (``VAR=value``, ``export VAR=value``) and compose ``environment:`` entries
(``- VAR=value`` and ``VAR: value``) are one line each, so a line pattern reads them all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

ENV_FILES = (
    ".env", "*.env", ".env.*", "docker-compose*.yml", "docker-compose*.yaml",
    "compose*.yml", "compose*.yaml",
)


def env_values(text: str, variable: str) -> Iterator[tuple[int, int, str]]:
    """``(line, 1-based column, value)`` of every setting of ``variable``, quotes stripped."""
    pattern = re.compile(
        rf"""^\s*(?:-\s*)?(?:export\s+)?["']?{re.escape(variable)}["']?\s*[=:]\s*(?P<value>.*?)\s*$"""
    )
    for number, line in enumerate(text.splitlines(), start=1):
        match = pattern.match(line)
        if match:
            value = match["value"].split(" #", 1)[0].strip().strip("'\"")
            yield number, match.start("value") + 1, value
