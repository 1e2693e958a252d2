"""Tests that prove a retrofitted repository's tracing, written into that repository.

``generate_tests(root)`` finds every instrumented site (``scaffold.testgen.locate``), plans a
test that drives it and asserts on trace ids and parent span ids, renders the templates of
``templates/testgen`` into the configured tests folder, and never rewrites a file the user
edited. ``scaffold retrofit`` calls it after a write run unless ``--no-tests`` or
``generate-tests = false``.
"""

from scaffold.testgen.generate import Generated, Sites, find_sites, generate_for, generate_tests
from scaffold.testgen.model import Case, ModuleTests, Site

__all__ = [
    "Case", "Generated", "ModuleTests", "Site", "Sites", "find_sites", "generate_for",
    "generate_tests",
]
