"""Each answer set's generated project passes its own ``make setup``, ``make test``, ``make lint``.

This is what a new user does after ``scaffold new``: the generated tests prove the trace over
a real Tansu broker, the export to a real OTLP receiver and the Redis queue where chosen.
"""

from __future__ import annotations

import pytest

from .conftest import ANSWER_SETS, make

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", sorted(ANSWER_SETS))
def test_generated_project_sets_up_passes_its_tests_and_lints(set_up_project, name):
    project = set_up_project(name)
    make(project, "test")
    make(project, "lint")
