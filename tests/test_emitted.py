"""The one place emitted files are made: the header they carry and the write that places them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from scaffold.emitted import (
    Ownership,
    environment,
    ownership_of,
    parse,
    stamp,
    write_text,
)
from scaffold.engine.model import is_vendored
from scaffold.engine.writer import NotWritable

BODY = "import pytest\n"


def test_a_stamped_body_is_ours_until_it_is_edited():
    stamped = stamp(BODY, "templates/testgen/test_module.py.jinja", "1.2.3")

    header, body = parse(stamped)
    assert header is not None and body == BODY
    assert (header.version, header.template) == ("1.2.3", "templates/testgen/test_module.py.jinja")
    assert ownership_of(stamped) is Ownership.OURS
    assert ownership_of(stamped + "# mine\n") is Ownership.EDITED
    assert ownership_of(BODY) is Ownership.FOREIGN
    assert parse(BODY) == (None, BODY)


def test_the_one_line_header_of_older_vendored_kits_is_still_read():
    digest = hashlib.sha256(BODY.encode()).hexdigest()[:32]
    old = f"# Vendored by scaffold retrofit from kit 0.0.1 (sha256:{digest})\n{BODY}"

    header, body = parse(old)
    assert header is not None and (header.version, header.template, body) == ("0.0.1", None, BODY)
    assert ownership_of(old) is Ownership.OURS
    assert ownership_of(old.replace("pytest", "os")) is Ownership.EDITED
    assert is_vendored(old.encode())


def test_only_a_file_stamped_from_a_kit_template_is_a_vendored_kit():
    assert is_vendored(stamp(BODY, "templates/kit/threads.py.jinja").encode())
    assert not is_vendored(stamp(BODY, "templates/testgen/conftest.py.jinja").encode())
    assert not is_vendored(BODY.encode())


def test_a_new_file_is_an_ordinary_source_file_and_an_existing_one_keeps_its_mode(tmp_path):
    new = tmp_path / "pkg" / "new.py"
    write_text(new, "a = 1\r\n")  # newlines as given
    assert new.read_bytes() == b"a = 1\r\n"
    assert new.stat().st_mode & 0o777 == 0o644

    script = tmp_path / "run.py"
    script.write_text("")
    os.chmod(script, 0o755)
    write_text(script, BODY)
    assert (script.read_text(), script.stat().st_mode & 0o777) == (BODY, 0o755)
    assert not list(tmp_path.rglob(".*.tmp"))


def test_a_read_only_file_is_refused_even_for_root(tmp_path: Path):
    locked = tmp_path / "locked.py"
    locked.write_text(BODY)
    os.chmod(locked, 0o444)

    with pytest.raises(NotWritable):
        write_text(locked, "x = 1\n")
    assert locked.read_text() == BODY


def test_templates_render_strictly_with_the_filters_given():
    env = environment(shout=str.upper)

    assert env.from_string("{{ name | shout }}\n").render(name="kit") == "KIT\n"
    with pytest.raises(Exception, match="undefined"):
        env.from_string("{{ missing }}").render()
