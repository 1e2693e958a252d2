"""CI's run of `make corpus` on a slice of third-party sources: no crash, no harm, a fixed point."""

from __future__ import annotations

import pytest

from benchmarks.corpus import check_corpus, copy_corpus


@pytest.mark.slow
def test_retrofit_leaves_third_party_code_parseable_and_stable(tmp_path):
    assert copy_corpus(tmp_path, packages=("aiokafka", "jinja2", "anyio"))
    counts, problems = check_corpus(tmp_path)
    assert problems == []
    assert counts["files changed"] > 0 and counts["rule crashes"] == 0
    assert counts["second-run changes"] == 0
