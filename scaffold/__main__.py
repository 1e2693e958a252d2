"""Allow ``python -m scaffold``."""

from scaffold.cli import entry

entry()
