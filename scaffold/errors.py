"""Exit codes and the one error every command turns into a line on stderr.

At the bottom with ``scaffold.config``: every layer may raise ``UsageError``; only the command
line (``scaffold.cli``) catches it, prints ``scaffold: <message>`` and exits ``EXIT_ERROR``.
"""

from __future__ import annotations

EXIT_OK = 0  # nothing to change and no findings
EXIT_CHANGES = 1  # changes needed (--check/--diff) or made, or findings
EXIT_ERROR = 2  # usage or configuration error; a file could not be read, parsed or written
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


class UsageError(Exception):
    """A bad flag, value or configuration: one line on stderr and exit 2.

    The base of every error the user can fix: ``config.ConfigError``,
    ``engine.discovery.PathNotFound``, ``vendor.KitEdited``, ``new_service.NewServiceError``.
    """
