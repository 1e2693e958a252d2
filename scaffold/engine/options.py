"""Per-rule options from ``[tool.scaffold.options.<id>]``, checked against the rule's defaults.

One resolver for checks and codemods alike, so an unknown name or a wrong type is the same
one-line configuration error (exit 2) whichever kind of rule it was written for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class RuleOptionError(ValueError):
    """An option a rule does not take, or a value of the wrong type."""


def resolve_options(kind: str, rule_id: str, defaults: Mapping[str, Any],
                    options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``defaults`` overlaid with configured values (``kebab-case`` names accepted)."""
    resolved = dict(defaults)
    for name, value in (options or {}).items():
        key = name.replace("-", "_")
        if key not in defaults:
            known = ", ".join(sorted(k.replace("_", "-") for k in defaults)) or "none"
            raise RuleOptionError(
                f"unknown option {name!r} for {kind} {rule_id!r} (known: {known})")
        default = defaults[key]
        if isinstance(default, (list, tuple)):
            if not isinstance(value, (list, tuple)) or not all(
                    isinstance(item, str) for item in value):
                raise RuleOptionError(
                    f"option {name!r} of {kind} {rule_id!r} must be a list of strings")
            value = tuple(value)
        elif not isinstance(value, type(default)):
            raise RuleOptionError(
                f"option {name!r} of {kind} {rule_id!r} must be {type(default).__name__}")
        resolved[key] = value
    return resolved
