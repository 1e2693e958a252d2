"""The engine's removal of scheduled imports (``scaffold.engine.unused_imports``).

Where LibCST's ``RemoveImportsVisitor`` and the engine both can decide, they give the same
bytes; where a name may still be used (a string, left-out code, a one-line suite) the engine
keeps the import, and LibCST's answer is not asked.
"""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import RemoveImportsVisitor
from libcst.metadata import MetadataWrapper

from scaffold.engine.unused_imports import Scheduled, remove_unused_imports


def _ours(source: str, scheduled: list[Scheduled], **kwargs: object) -> str:
    context = CodemodContext(scratch={RemoveImportsVisitor.CONTEXT_KEY: scheduled})
    module = cst.parse_module(textwrap.dedent(source))
    return remove_unused_imports(module, scheduled, context, **kwargs).code  # type: ignore[arg-type]


def _libcst(source: str, scheduled: list[Scheduled]) -> str:
    wrapper = MetadataWrapper(cst.parse_module(textwrap.dedent(source)))
    context = CodemodContext(wrapper=wrapper)
    return wrapper.visit(RemoveImportsVisitor(context, scheduled)).code


AGREED: dict[str, tuple[str, list[Scheduled]]] = {
    "an unused from-import among others": (
        """\
        from threading import Event, Thread, current_thread

        def run():
            return Event(), current_thread()
        """, [("threading", "Thread", None)]),
    "the last alias, parenthesised, with a trailing comma": (
        """\
        from threading import (
            Event,
            Thread,
        )

        Event()
        """, [("threading", "Thread", None)]),
    "a module import": (
        """\
        import threading
        import os

        os.getcwd()
        """, [("threading", None, None)]),
    "an alias": (
        """\
        from threading import Thread as T, Event

        Event()
        """, [("threading", "Thread", "T")]),
    "still used: kept": (
        """\
        from threading import Thread

        class Worker(Thread):
            pass
        """, [("threading", "Thread", None)]),
    "an import inside a function": (
        """\
        def publish(envelope):
            from observability import get_current_span, inject

            inject(envelope)
        """, [("observability", "get_current_span", None)]),
    "an import in a try block's handler": (
        """\
        try:
            import ujson as json
        except ImportError:
            import json
            import threading

        json.dumps({})
        """, [("threading", None, None)]),
    "an unscheduled unused import stays": (
        """\
        import os
        import threading
        """, [("threading", None, None)]),
    "the same name scheduled twice": (
        """\
        from threading import Thread
        """, [("threading", "Thread", None), ("threading", "Thread", None)]),
}


@pytest.mark.parametrize("case", sorted(AGREED))
def test_the_same_bytes_as_libcst(case: str) -> None:
    source, scheduled = AGREED[case]
    assert _ours(source, scheduled) == _libcst(source, scheduled)


def test_a_removed_statement_leaves_its_comment_to_the_next_one() -> None:
    """LibCST drops the lines above a removed statement; a comment is the user's."""
    source = """\
        \"\"\"Docstring.\"\"\"

        # the guard's import
        from opentelemetry.trace import get_current_span
        import os

        os.getcwd()
        """
    assert _ours(source, [("opentelemetry.trace", "get_current_span", None)]) == (
        '"""Docstring."""\n\n# the guard\'s import\nimport os\n\nos.getcwd()\n')


def test_a_statement_sharing_a_line_leaves_no_semicolon() -> None:
    assert _ours("import os; import threading\nos.getcwd()\n",
                 [("threading", None, None)]) == "import os\nos.getcwd()\n"


def test_a_removal_changes_the_module() -> None:
    """The agreed cases are not all no-ops: the comparison above could fail."""
    source, scheduled = AGREED["an unused from-import among others"]
    assert "Thread" not in _ours(source, scheduled)


def test_a_name_in_all_keeps_the_import() -> None:
    source = """\
        from threading import Thread

        __all__ = ["Thread"]
        """
    assert "import Thread" in _ours(source, [("threading", "Thread", None)])


def test_a_string_annotation_keeps_the_import() -> None:
    source = """\
        from typing import Optional
        from threading import Thread

        worker: "Optional[Thread]" = None
        """
    assert "import Thread" in _ours(source, [("threading", "Thread", None)])


def test_a_docstring_mentioning_the_name_does_not_keep_it() -> None:
    source = """\
        \"\"\"Runs a Thread.\"\"\"
        from threading import Thread
        """
    assert "import Thread" not in _ours(source, [("threading", "Thread", None)])


def test_left_out_code_using_the_name_keeps_the_import() -> None:
    """A sliced module: the definition that uses the name is not in the tree."""
    source = """\
        from threading import Thread

        def stub(): ...
        """
    kept = _ours(source, [("threading", "Thread", None)], left_out_uses={"Thread"}.__contains__)
    assert "import Thread" in kept


def test_an_import_that_is_its_whole_block_stays() -> None:
    """Removing it would leave an empty block (``pass`` would be new code)."""
    source = """\
        if True:
            import threading
        """
    assert _ours(source, [("threading", None, None)]) == textwrap.dedent(source)


def test_an_import_on_its_compound_statements_line_stays() -> None:
    source = """\
        if True: import threading
        x = 1
        """
    assert _ours(source, [("threading", None, None)]) == textwrap.dedent(source)
