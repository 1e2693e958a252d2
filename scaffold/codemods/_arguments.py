"""Arguments added to a call laid out the way the call already is, so touched lines stay clean
for the repo's linters (no trailing whitespace, a new argument on a line of its own when the
others are) and its formatter has nothing to say."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

_SPACE = cst.SimpleWhitespace(" ")
_NONE = cst.SimpleWhitespace("")


def _breaks(whitespace: cst.BaseParenthesizableWhitespace) -> bool:
    return isinstance(whitespace, cst.ParenthesizedWhitespace)


def with_separators(args: Sequence[cst.Arg]) -> list[cst.Arg]:
    """``args`` with a comma after every argument but the last (a trailing comma is kept).

    The separator is the one the call already uses (``", "``, or a line break and the
    arguments' indent). An argument that was last before and ended in a line break before the
    closing parenthesis gets its comma right after it; the line break moves to the end of the
    new last argument, so no line ends in ``", "``.
    """
    result = list(args)
    separator = next((a.comma for a in result[:-1] if isinstance(a.comma, cst.Comma)),
                     cst.Comma(whitespace_after=_SPACE))
    closing: cst.BaseParenthesizableWhitespace | None = None
    for index, arg in enumerate(result[:-1]):
        if isinstance(arg.comma, cst.Comma):
            continue
        if _breaks(arg.whitespace_after_arg):
            closing = closing or arg.whitespace_after_arg
            arg = arg.with_changes(whitespace_after_arg=_NONE)
        result[index] = arg.with_changes(comma=separator)
    if result and closing is not None and not isinstance(result[-1].comma, cst.Comma) \
            and not _breaks(result[-1].whitespace_after_arg):
        result[-1] = result[-1].with_changes(whitespace_after_arg=closing)
    return result


def append_arg(call: cst.Call, new: cst.Arg) -> cst.Call:
    """``call`` with ``new`` as its last argument, laid out like the arguments before it."""
    args = list(call.args)
    if args and isinstance(args[-1].comma, cst.Comma):
        # a trailing comma: the new argument goes on a line of its own, like the last one
        last = args[-1].comma
        before_last = args[-2].comma.whitespace_after if len(args) > 1 and isinstance(
            args[-2].comma, cst.Comma) else call.whitespace_before_args
        if not _breaks(before_last):
            before_last = _SPACE
        args[-1] = args[-1].with_changes(comma=last.with_changes(whitespace_after=before_last))
        return call.with_changes(args=[*args, new.with_changes(comma=last)])
    return call.with_changes(args=with_separators([*args, new]))
