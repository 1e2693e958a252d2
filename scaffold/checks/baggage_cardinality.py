"""Baggage carries a key outside the allowlist or a value built from an unbounded identifier.

What it does: looks at every ``set_baggage(key, value)`` call and at baggage written by hand
into a carrier (``carrier["baggage"] = ...``, ``{"baggage": ...}``, ``("baggage", ...)``, the
header ``W3CBaggagePropagator`` reads). It reports a key that is not in option
``allowed-keys`` (literal keys, or the name of a constant holding one; default: the correlation
id), a key computed at run time, and a value whose names, attributes or looked-up fields contain
a word from option ``unbounded-words`` (user, request, session, email, ...). Identifiers that
mention ``correlation`` are the correlation id and are accepted. One finding per call.
"""

from __future__ import annotations

import libcst as cst

from scaffold.checks._syntax import (
    argument,
    call_name,
    identifier_words,
    string_value,
    terminal_name,
)
from scaffold.checks.base import Check

_BAGGAGE_HEADER = "baggage"


class BaggageCardinality(Check):
    WHY = (
        "Baggage is copied into every outgoing request and message and travels to every "
        "descendant service, including ones that copy it onto metrics, logs or spans. A key "
        "or value per user, request or session multiplies cardinality across the whole fleet "
        "and leaks personal data to services that never asked for it; baggage is never "
        "recorded on spans by itself, so it is also the wrong place for debugging data."
    )
    FIX_HINT = (
        "Keep only the correlation id in baggage (`correlation_context(correlation_id)`); put "
        "everything else on the span as an attribute (`span.set_attribute('user.id', ...)`), "
        "or add the key to `allowed-keys` if its values really are a small fixed set."
    )
    PREFILTER = ("baggage",)
    OPTIONS = {
        "allowed_keys": ("correlation_id", "CORRELATION_ID_KEY"),
        "unbounded_words": (
            "user", "username", "request", "session", "email", "ip", "token", "url", "path",
            "query", "body", "payload", "phone", "customer", "account",
        ),
    }
    VALID = (
        """
        from opentelemetry import baggage
        from tracekit import CORRELATION_ID_KEY

        ctx = baggage.set_baggage("correlation_id", envelope.correlation_id)
        ctx = baggage.set_baggage(CORRELATION_ID_KEY, request.headers["X-Correlation-ID"])
        headers["baggage"] = f"correlation_id={correlation_id}"
        span.set_attribute("user.id", user.id)
        """,
    )
    INVALID = (
        """
        from opentelemetry.baggage import set_baggage

        ctx = set_baggage("user_id", user.id)  # <-
        ctx = set_baggage("correlation_id", session.sid)  # <-
        ctx = set_baggage("correlation_id", request.headers.get("X-User-Email"))  # <-
        for key, value in attributes.items():
            ctx = set_baggage(key, value)  # <-
        """,
        """
        carrier["baggage"] = f"correlation_id={cid},tenant={request.tenant}"  # <-
        headers = [("baggage", "user_email=" + email)]  # <-
        carrier = {"baggage": f"session={session_id}"}  # <-
        """,
    )

    def visit_Call(self, node: cst.Call) -> None:
        if call_name(node) != "set_baggage":
            return
        key = argument(node, 0, "name")
        value = argument(node, 1, "value")
        problems = []
        if key is not None:
            problems.extend(self._key_problems(key))
        if value is not None:
            problems.extend(self._value_problems(value))
        if problems:
            self.report(node, "; ".join(problems))

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if isinstance(target.target, cst.Subscript) and _subscript_key(target.target) == (
                _BAGGAGE_HEADER
            ):
                self._check_header(node, node.value)

    def visit_DictElement(self, node: cst.DictElement) -> None:
        if _is_baggage_header(node.key):
            self._check_header(node, node.value)

    def visit_Tuple(self, node: cst.Tuple) -> None:
        if len(node.elements) == 2 and _is_baggage_header(node.elements[0].value):
            self._check_header(node, node.elements[1].value)

    def _check_header(self, site: cst.CSTNode, header: cst.BaseExpression) -> None:
        problems = []
        for key in _header_keys(header):
            if key not in self.options["allowed_keys"]:
                problems.append(self._outside_allowlist(repr(key)))
        problems.extend(self._value_problems(header))
        if problems:
            self.report(site, "; ".join(problems))

    def _key_problems(self, key: cst.BaseExpression) -> list[str]:
        literal = string_value(key)
        allowed = self.options["allowed_keys"]
        if literal is not None:
            return [] if literal in allowed else [self._outside_allowlist(repr(literal))]
        if isinstance(key, (cst.Name, cst.Attribute)) and terminal_name(key) in allowed:
            return []
        return ["baggage key is computed at run time, so its values cannot be bounded"]

    def _outside_allowlist(self, key: str) -> str:
        allowed = ", ".join(self.options["allowed_keys"])
        return f"baggage key {key} is not in the allowlist ({allowed})"

    def _value_problems(self, value: cst.BaseExpression) -> list[str]:
        words = identifier_words(value)
        if "correlation" in words:
            return []
        unbounded = sorted(words & set(self.options["unbounded_words"]))
        if not unbounded:
            return []
        return [f"baggage value is built from unbounded identifiers ({', '.join(unbounded)})"]


def _is_baggage_header(node: cst.BaseExpression | None) -> bool:
    literal = string_value(node) if node is not None else None
    return literal is not None and literal.lower() == _BAGGAGE_HEADER


def _subscript_key(node: cst.Subscript) -> str | None:
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return None
    literal = string_value(node.slice[0].slice.value)
    return literal.lower() if literal else None


def _header_keys(header: cst.BaseExpression) -> list[str]:
    """Keys of a W3C baggage header (``k1=v1,k2=v2``) from its literal text, f-strings included."""
    text = ""
    if isinstance(header, cst.FormattedString):
        # each interpolation becomes a placeholder so only literal text can name keys
        text = "".join(
            part.value if isinstance(part, cst.FormattedStringText) else "{}"
            for part in header.parts
        )
    elif isinstance(header, cst.BinaryOperation) and isinstance(header.operator, cst.Add):
        return _header_keys(header.left)
    else:
        text = string_value(header) or ""
    keys = []
    for member in text.split(","):
        key, separator, _ = member.partition("=")
        if separator and key.strip() and "{}" not in key:
            keys.append(key.strip())
    return keys
