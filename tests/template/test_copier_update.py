"""``copier update`` carries a generated service from one template version to the next.

A temporary git repository holds a copy of the template (``copier.yml`` and ``templates/``),
tagged v1; a service generated from it is committed and edited by its owner; the template
changes and is tagged v2; ``copier update`` must bring the change, keep the owner's edit, and
report a conflicting edit as unmerged (Copier itself exits 0 then).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scaffold.resources import template_root

pytestmark = pytest.mark.slow

OWNER_HELPER = "\n\ndef owners_helper() -> int:\n    return 42\n"


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    )
    return done.stdout


def _copier(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "copier", *args], cwd=cwd, capture_output=True, text=True
    )


def _replace_line(path: Path, index: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[index] = text + "\n"
    path.write_text("".join(lines))


@pytest.fixture
def template_repo(tmp_path: Path) -> Path:
    """A git repository holding this checkout's template, tagged v1."""
    repo = tmp_path / "template"
    repo.mkdir()
    shutil.copy(template_root() / "copier.yml", repo)
    shutil.copytree(template_root() / "templates", repo / "templates")
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "--message", "template v1")
    _git(repo, "tag", "v1")
    return repo


@pytest.fixture
def service(tmp_path: Path, template_repo: Path) -> Path:
    """A service generated from v1 and committed, as its owner would."""
    project = tmp_path / "grading_service"
    copied = _copier(tmp_path, "copy", "--trust", "--defaults", "--quiet", str(template_repo),
                     str(project))
    assert copied.returncode == 0, copied.stderr
    _git(project, "init", "--quiet", "--initial-branch=main")
    _git(project, "add", "--all")
    _git(project, "commit", "--quiet", "--message", "generated from v1")
    return project


def _release_v2(template_repo: Path) -> None:
    """Template v2: a new question, a new file using it, and a new first line of the README."""
    service_template = template_repo / "templates" / "service"
    with open(template_repo / "copier.yml", "a") as copier_yml:
        copier_yml.write('\nrunbook_owner:\n  type: str\n  default: "team-{{ service_name }}"\n')
    (service_template / "RUNBOOK.md.jinja").write_text(
        "# Runbook of {{ service_name }}\n\nOwner: {{ runbook_owner }}\n"
    )
    _replace_line(
        service_template / "README.md.jinja", 0, "# {{ service_name }} (a traced service)"
    )
    _git(template_repo, "add", "--all")
    _git(template_repo, "commit", "--quiet", "--message", "template v2")
    _git(template_repo, "tag", "v2")


def test_update_brings_the_new_version_and_keeps_the_owners_edit(service, template_repo):
    handlers = service / "grading_service" / "handlers.py"
    handlers.write_text(handlers.read_text() + OWNER_HELPER)
    _git(service, "commit", "--quiet", "--all", "--message", "owner's helper")
    _release_v2(template_repo)

    updated = _copier(service, "update", "--trust", "--defaults")

    assert updated.returncode == 0, updated.stderr
    # The new question takes its default, and the new file uses it.
    assert (service / "RUNBOOK.md").read_text() == (
        "# Runbook of grading_service\n\nOwner: team-grading_service\n"
    )
    assert (service / "README.md").read_text().startswith("# grading_service (a traced service)\n")
    assert handlers.read_text().endswith(OWNER_HELPER)
    answers = yaml.safe_load((service / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v2"
    assert answers["runbook_owner"] == "team-grading_service"
    assert answers["dead_letter_topic"] == "{topic}.dlq"
    kit_header = (service / "grading_service" / "tracekit" / "tracing.py").read_text()
    assert kit_header.startswith("# Rendered by scaffold v2 ")
    assert _git(service, "ls-files", "--unmerged") == ""


def test_conflicting_edit_is_left_unmerged_with_markers(service, template_repo):
    readme = service / "README.md"
    _replace_line(readme, 0, "# Grading service, as its owner named it")
    _git(service, "commit", "--quiet", "--all", "--message", "owner's title")
    _release_v2(template_repo)

    updated = _copier(service, "update", "--trust", "--defaults")

    assert updated.returncode == 0, updated.stderr
    unmerged_entries = _git(service, "ls-files", "--unmerged").splitlines()
    unmerged = {entry.split("\t")[-1] for entry in unmerged_entries}
    assert unmerged == {"README.md"}
    text = readme.read_text()
    assert "<<<<<<< " in text and ">>>>>>> " in text
    assert "# Grading service, as its owner named it" in text
    assert "# grading_service (a traced service)" in text
    # The rest of the update still arrived.
    assert (service / "RUNBOOK.md").is_file()


# The template as the previous landing shipped it (this repository carries no release tags,
# so the commit names it): a service generated then must update to this checkout's template.
PREVIOUS_RELEASE = "236dfbd26bd35b1b4669edc717efd98977b0db94"


def _template_at(commit: str, dest: Path) -> None:
    """``copier.yml`` and ``templates/`` of ``commit`` in this checkout's history, into ``dest``."""
    root = template_root()
    known = subprocess.run(["git", "-C", str(root), "cat-file", "-e", f"{commit}^{{commit}}"],
                           capture_output=True)
    if known.returncode != 0:
        pytest.skip(f"this checkout's history does not hold {commit[:7]} (a shallow clone)")
    archive = subprocess.run(["git", "-C", str(root), "archive", commit, "copier.yml",
                              "templates"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)


def _tree(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.rglob("*"))
            if path.is_file() and ".git" not in path.relative_to(folder).parts}


def test_a_service_from_the_previous_release_updates_to_this_template(tmp_path):
    repo = tmp_path / "template"
    repo.mkdir()
    _template_at(PREVIOUS_RELEASE, repo)
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "--message", "previous release")
    _git(repo, "tag", "v1")
    project = tmp_path / "grading_service"
    copied = _copier(tmp_path, "copy", "--trust", "--defaults", "--quiet", str(repo),
                     str(project))
    assert copied.returncode == 0, copied.stderr
    _git(project, "init", "--quiet", "--initial-branch=main")
    _git(project, "add", "--all")
    _git(project, "commit", "--quiet", "--message", "generated from the previous release")
    handlers = project / "grading_service" / "handlers.py"
    handlers.write_text(handlers.read_text() + OWNER_HELPER)
    _git(project, "commit", "--quiet", "--all", "--message", "owner's helper")
    # This checkout's template becomes v2 (files the release dropped are dropped too).
    shutil.rmtree(repo / "templates")
    shutil.copy(template_root() / "copier.yml", repo)
    shutil.copytree(template_root() / "templates", repo / "templates")
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "--message", "this checkout")
    _git(repo, "tag", "v2")

    updated = _copier(project, "update", "--trust", "--defaults")

    assert updated.returncode == 0, updated.stderr
    assert _git(project, "ls-files", "--unmerged") == ""
    assert handlers.read_text().endswith(OWNER_HELPER)
    # Apart from the owner's edit, the service is what this template generates afresh.
    fresh = tmp_path / "fresh" / "grading_service"
    made = _copier(tmp_path, "copy", "--trust", "--defaults", "--quiet", "--vcs-ref", "v2",
                   str(repo), str(fresh))
    assert made.returncode == 0, made.stderr
    ours, expected = _tree(project), _tree(fresh)
    ours["grading_service/handlers.py"] = ours["grading_service/handlers.py"][
        :-len(OWNER_HELPER.encode())]
    assert ours.keys() == expected.keys()
    differing = [name for name in ours if ours[name] != expected[name]]
    assert differing == [], differing
