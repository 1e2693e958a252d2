"""Generate a new traced service from the Copier template (``copier.yml`` + ``templates/service``).

``create_service`` is ``copier copy --trust`` through Copier's API, with the failures a user can
cause turned into exceptions that carry one line: which answer was rejected and why, or why the
destination cannot be used. Copier validates every answer before it writes anything, and removes
a destination it created when rendering fails, so an error never leaves a half-written service.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import copier
import yaml
from copier.errors import UserMessageError

from scaffold import __version__
from scaffold.errors import UsageError
from scaffold.resources import template_root

# Computed by copier.yml itself (``when: false``), but a caller may pin it.
_COMPUTED = frozenset({"kit_version"})


class NewServiceError(UsageError):
    """The service could not be generated; the message is one line for the user."""


class InvalidAnswerError(NewServiceError, ValueError):
    """An answer broke its question's rule."""

    def __init__(self, question: str, rule: str) -> None:
        self.question = question
        self.rule = rule
        super().__init__(f"invalid answer for '{question}': {rule}")


def questions(template: Path | None = None) -> dict[str, dict[str, object]]:
    """The template's questions (name -> settings), in the order Copier asks them."""
    config = yaml.safe_load((template or template_root()).joinpath("copier.yml").read_text())
    return {
        name: settings
        for name, settings in config.items()
        if not name.startswith("_") and isinstance(settings, dict)
    }


def create_service(
    dest: Path | str,
    *,
    data: Mapping[str, object] | None = None,
    defaults: bool = False,
    vcs_ref: str | None = None,
    template: Path | None = None,
    quiet: bool = False,
) -> Path:
    """Render the service template into ``dest`` (which must be missing or empty); return it.

    ``data`` answers questions (strings are parsed by each question's type, as ``--data`` does);
    ``defaults`` takes the default for every other question instead of prompting. ``vcs_ref``
    picks the template version when the template is a git checkout (Copier's default: the latest
    tag, else ``HEAD`` with uncommitted changes).
    """
    root = (template or template_root()).resolve()
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise NewServiceError(f"destination '{dest}' exists and is not empty; choose a new path")
    answers = dict(data or {})
    known = set(questions(root)) | _COMPUTED
    unknown = sorted(set(answers) - known)
    if unknown:
        raise NewServiceError(
            f"unknown question '{unknown[0]}'; questions: {', '.join(sorted(known - _COMPUTED))}"
        )
    if not (root / ".git").exists():
        # Rendered from a plain folder (an installed wheel): no git description to stamp the kit.
        answers.setdefault("kit_version", __version__)
    # Copier reports progress and warnings on stderr while it clones and asks; a failure must
    # still be one line, so its output is shown only once the service exists.
    progress = io.StringIO()
    try:
        with contextlib.redirect_stderr(progress):
            copier.run_copy(
                str(root),
                dest,
                data=answers,
                defaults=defaults,
                vcs_ref=vcs_ref,
                unsafe=True,
                quiet=quiet,
            )
    except UserMessageError as exc:
        raise NewServiceError(str(exc).strip().splitlines()[0]) from exc
    except ValueError as exc:
        raise _as_invalid_answer(exc) from exc
    sys.stderr.write(progress.getvalue())
    return dest


def _as_invalid_answer(exc: ValueError) -> NewServiceError:
    """Name the question and its rule from one of Copier's answer errors."""
    message = str(exc).strip()
    for prefix in ("Validation error for question '", "Invalid choice for '"):
        if message.startswith(prefix):
            question, _, rule = message[len(prefix):].partition("': ")
            return InvalidAnswerError(question, rule)
    first_line = message.splitlines()[0] if message else type(exc).__name__
    asked = _question_being_asked(exc.__traceback__)
    if asked is None:
        return NewServiceError(f"invalid answer: {first_line}")
    return InvalidAnswerError(asked, f"cannot be read as its type ({first_line})")


def _question_being_asked(tb: TracebackType | None) -> str | None:
    """The question Copier was reading when a cast failed.

    Copier raises the bare ``float()`` or YAML error without the question's name; the name is
    only in its questionnaire loop (``Worker._ask``), so read it from that frame.
    """
    question = None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "_ask" and frame.f_globals.get("__name__", "").startswith(
            "copier"
        ):
            question = frame.f_locals.get("var_name")
        tb = tb.tb_next
    return question if isinstance(question, str) else None
