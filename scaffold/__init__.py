"""scaffold: correct-by-construction distributed tracing for async Python services."""

from importlib.metadata import PackageNotFoundError, version

# The name on PyPI: "scaffold" there is an unrelated project of 2013, so every message that says
# how to install this tool names DISTRIBUTION; the import package and the command stay `scaffold`.
DISTRIBUTION = "scaffold-tracing"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["DISTRIBUTION", "__version__"]
