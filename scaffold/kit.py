"""Render the observability kit (``templates/kit``) with jinja2, outside Copier.

Retrofit vendors the kit into repos that lack one, and the test suite and benchmarks import it
as rendered; Copier renders the same templates into new services through ``{% include %}``.
Each template starts with a header comment naming the scaffold version and its own path.
"""

from __future__ import annotations

import keyword
from pathlib import Path

from scaffold import __version__
from scaffold.emitted import environment, write_text
from scaffold.engine.model import KIT_TEMPLATE_DIR
from scaffold.resources import template_root

TEMPLATE_SUFFIX = ".jinja"


def kit_template_names() -> list[str]:
    """Loader names of every kit template (``templates/kit/<module>.py.jinja``), sorted."""
    folder = template_root() / KIT_TEMPLATE_DIR
    return sorted(
        f"{KIT_TEMPLATE_DIR}/{path.name}"
        for path in folder.iterdir()
        if path.is_file() and path.name.endswith(TEMPLATE_SUFFIX)
    )


def _check_package_name(package_name: str) -> None:
    parts = package_name.split(".")
    if not all(part.isidentifier() and not keyword.iskeyword(part) for part in parts):
        raise ValueError(f"package_name {package_name!r} is not a dotted Python import path")


def kit_sources(*, package_name: str, kit_version: str = __version__) -> dict[str, str]:
    """The rendered kit: output path relative to the kit package folder -> file text."""
    _check_package_name(package_name)
    env = environment()
    rendered = {}
    for name in kit_template_names():
        output = Path(name).name.removesuffix(TEMPLATE_SUFFIX)
        rendered[output] = env.get_template(name).render(
            package_name=package_name, kit_version=kit_version
        )
    return rendered


def render_kit(dest_dir: Path, *, package_name: str, kit_version: str = __version__) -> list[Path]:
    """Write the kit into ``dest_dir`` (the ``tracekit`` package folder itself); return the files.

    Each file is written to a temporary sibling and renamed into place
    (``scaffold.emitted.write_text``), so a reader never sees half a module.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for relative, text in kit_sources(package_name=package_name, kit_version=kit_version).items():
        target = dest_dir / relative
        write_text(target, text)
        written.append(target)
    return written
