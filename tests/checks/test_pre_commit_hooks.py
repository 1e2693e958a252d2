"""The hooks in ``.pre-commit-hooks.yaml``, run by the real pre-commit in a temporary git repo.

pre-commit would install a ``language: python`` hook by pip-installing this repository, which
needs the package index; the test runs the same hook definitions (id, entry, files, types,
flags) as ``language: system`` against this checkout's ``scaffold`` instead, so pre-commit's
file selection, argument passing and pass/fail handling are all real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest
import yaml
from pre_commit.clientlib import load_manifest

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent

MISTAKE = 'from tracekit import init_tracing\n\ntracer = init_tracing("orders")\n'
UNSAFE_TOKEN = dedent(
    """
    from opentelemetry import context


    def handle(ctx, message):
        token = context.attach(ctx)
        process(message)
        context.detach(token)
    """
).lstrip()
CLEAN = "def create_app():\n    return None\n"


def test_the_manifest_is_valid_for_pre_commit():
    hooks = {hook["id"]: hook for hook in load_manifest(str(MANIFEST))}
    assert set(hooks) == {"scaffold-check", "scaffold-retrofit"}
    assert hooks["scaffold-retrofit"]["entry"] == "scaffold retrofit --check"


def _repo(root: Path, files: dict[str, str]) -> Path:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    hooks = []
    for hook in yaml.safe_load(MANIFEST.read_text()):
        hooks.append({**hook, "language": "system", "entry": str(BIN / hook["entry"])})
    config = {"repos": [{"repo": "local", "hooks": hooks}]}
    (root / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    return root


def _pre_commit(root: Path, hook_id: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(root.parent / "pre-commit-home"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", hook_id, "--all-files", "--color", "never"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize(
    ("files", "failed", "reported"),
    [
        ({"svc/app.py": MISTAKE}, True, "init-at-import"),
        ({"deploy/.env": "OTEL_PROPAGATORS=baggage,tracecontext\n", "svc/app.py": CLEAN},
         True, "propagator-overlap"),
        ({"svc/app.py": CLEAN, "deploy/.env": "OTEL_PROPAGATORS=tracecontext,baggage\n"},
         False, None),
    ],
    ids=["python-mistake-fails", "env-file-mistake-fails", "clean-repo-passes"],
)
def test_scaffold_check_hook(tmp_path, files, failed, reported):
    root = _repo(tmp_path / "repo", files)
    done = _pre_commit(root, "scaffold-check")
    assert (done.returncode != 0) == failed, done.stdout + done.stderr
    assert ("Failed" if failed else "Passed") in done.stdout
    if reported:
        assert reported in done.stdout


def test_scaffold_retrofit_hook_fails_without_writing(tmp_path):
    root = _repo(tmp_path / "repo", {"svc/worker.py": UNSAFE_TOKEN})
    done = _pre_commit(root, "scaffold-retrofit")
    assert done.returncode != 0 and "Failed" in done.stdout, done.stdout + done.stderr
    assert "token-finally" in done.stdout
    assert (root / "svc/worker.py").read_text() == UNSAFE_TOKEN


def test_scaffold_retrofit_hook_passes_on_a_clean_repo(tmp_path):
    root = _repo(tmp_path / "repo", {"svc/app.py": CLEAN})
    done = _pre_commit(root, "scaffold-retrofit")
    assert done.returncode == 0 and "Passed" in done.stdout, done.stdout + done.stderr
