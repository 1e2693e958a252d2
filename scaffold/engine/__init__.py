"""The retrofit/check engine: discover files, prefilter, parse once, run, write atomically.

The bottom layer: it imports only itself and the foundation (``scaffold.config``,
``scaffold.errors``, ``scaffold.repo``), and is handed its rules and hooks. ``scaffold.api``
is the front the commands call; the engine's own API::

    from scaffold.engine import Options, run
    from scaffold.codemods import all_codemods

    result = run(["src"], all_codemods(), Options(write=False))  # kit: the configured one
    for file in result.results: ...
    result.exit_code  # 0 nothing to do, 1 changes/findings, 2 a file could not be processed

``process_source(bytes, path, rules)`` runs rules over one file's text without touching disk.
Rules are codemod classes (``scaffold.codemods.base.Codemod``) and check classes
(``scaffold.checks.base.Check``) alike, as ``scaffold.engine.rule.Rule`` describes them; both
run on the same parsed tree.
"""

from scaffold.config import Config, ConfigError
from scaffold.engine.discovery import PathNotFound, Target, discover
from scaffold.engine.model import FileResult, Finding, Kind, Settings, Status
from scaffold.engine.rule import Rule, is_codemod
from scaffold.engine.runner import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    Options,
    RunHooks,
    RunResult,
    process_source,
    run,
)

__all__ = [
    "EXIT_CHANGES",
    "EXIT_ERROR",
    "EXIT_OK",
    "Config",
    "ConfigError",
    "FileResult",
    "Finding",
    "Kind",
    "Options",
    "PathNotFound",
    "Rule",
    "RunHooks",
    "RunResult",
    "Settings",
    "Status",
    "Target",
    "discover",
    "is_codemod",
    "process_source",
    "run",
]
