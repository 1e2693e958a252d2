"""The example's own test suite passes, untouched and instrumented by hand."""

import re

from example.service import EXAMPLE_DIR, copy_service, hand_retrofit, run_service_tests


def _passed(output: str) -> int:
    found = re.search(r"(\d+) passed", output)
    return int(found.group(1)) if found else 0


def test_example_tests_pass_on_the_untraced_example():
    done = run_service_tests(EXAMPLE_DIR)

    assert done.returncode == 0, done.stdout + done.stderr
    assert _passed(done.stdout) >= 20
    assert "skipped" not in done.stdout


def test_example_tests_still_pass_once_instrumented(tmp_path):
    """Its tests check behaviour, not the absence of tracing, so retrofit can keep them green."""
    service = hand_retrofit(copy_service(tmp_path / "legacy_service"))

    done = run_service_tests(service)

    assert done.returncode == 0, done.stdout + done.stderr
    assert _passed(done.stdout) == _passed(run_service_tests(EXAMPLE_DIR).stdout)
