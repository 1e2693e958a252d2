"""Import roots, module names, projects and test packages read from packaging metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaffold.repo.packaging import ImportRoot, Packaging, import_roots, module_name


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _root_and_module(repo: Path, file: str) -> tuple[str, str | None]:
    path = repo / file
    roots = import_roots(repo, [path])
    assert len(roots) == 1
    return roots[0].path.relative_to(repo).as_posix(), module_name(path, roots)


@pytest.mark.parametrize(("metadata", "file", "root", "module"), [
    # setuptools: package-dir "" = src
    ({"pyproject.toml": '[tool.setuptools]\npackage-dir = {"" = "lib"}\n'},
     "lib/orders/api.py", "lib", "orders.api"),
    # setuptools: packages.find where
    ({"pyproject.toml": '[tool.setuptools.packages.find]\nwhere = ["code"]\n'},
     "code/orders/api.py", "code", "orders.api"),
    # setuptools: an explicit list with a package-dir entry for the package
    ({"pyproject.toml": '[tool.setuptools]\npackages = ["orders"]\n'
                        'package-dir = {orders = "vendor/orders"}\n'},
     "vendor/orders/api.py", "vendor", "orders.api"),
    # pdm: package-dir
    ({"pyproject.toml": '[tool.pdm.build]\npackage-dir = "lib"\n'},
     "lib/orders/api.py", "lib", "orders.api"),
    # pdm: includes
    ({"pyproject.toml": '[tool.pdm.build]\nincludes = ["code/orders/"]\n'},
     "code/orders/api.py", "code", "orders.api"),
    # poetry
    ({"pyproject.toml": '[tool.poetry]\nname = "o"\n'
                        'packages = [{include = "orders", from = "lib"}]\n'},
     "lib/orders/api.py", "lib", "orders.api"),
    # hatch
    ({"pyproject.toml": '[tool.hatch.build.targets.wheel]\npackages = ["lib/orders"]\n'},
     "lib/orders/api.py", "lib", "orders.api"),
    # hatch: only-include with sources stripping the prefix
    ({"pyproject.toml": '[tool.hatch.build.targets.wheel]\nonly-include = ["lib/orders"]\n'
                        'sources = ["lib"]\n'},
     "lib/orders/api.py", "lib", "orders.api"),
    ({"pyproject.toml": '[tool.hatch.build.targets.wheel.sources]\n"lib" = ""\n'},
     "lib/orders/api.py", "lib", "orders.api"),
    # setup.cfg
    ({"setup.cfg": "[options]\npackage_dir =\n    =lib\npackages = find:\n\n"
                   "[options.packages.find]\nwhere = lib\n"},
     "lib/orders/api.py", "lib", "orders.api"),
    # setup.py, read without running it
    ({"setup.py": "from setuptools import setup, find_packages\n"
                  "setup(name='o', package_dir={'': 'lib'}, packages=find_packages('lib'))\n"},
     "lib/orders/api.py", "lib", "orders.api"),
    # PEP 621 only: a src/ folder holding packages is a src layout
    ({"pyproject.toml": '[project]\nname = "o"\n'}, "src/orders/api.py", "src", "orders.api"),
])
def test_package_lists_of_every_backend_give_the_import_root(tmp_path, metadata, file, root,
                                                               module):
    repo = _tree(tmp_path, {**metadata, file: "", str(Path(file).parent / "__init__.py"): ""})
    if root != "src":  # an __init__.py chain above the listed folder: metadata wins over it
        (repo / root / "__init__.py").write_text("")

    assert _root_and_module(repo, file) == (root, module)


def test_without_metadata_the_init_chain_decides(tmp_path):
    repo = _tree(tmp_path, {
        "pyproject.toml": "[tool.ruff]\n",
        "services/__init__.py": "",
        "services/orders/__init__.py": "",
        "services/orders/pyproject.toml": "[tool.pdm]\ndistribution = false\n",
        "services/orders/api/routes.py": "",  # api/ has no __init__.py: a namespace portion
        "scripts/run.py": "",
    })

    assert _root_and_module(repo, "services/orders/api/routes.py") == (
        ".", "services.orders.api.routes")
    assert _root_and_module(repo, "scripts/run.py") == ("scripts", "run")
    model = Packaging(repo)
    assert model.project_of(repo / "services/orders/api/routes.py") == repo / "services/orders"
    assert model.project_of(repo / "scripts/run.py") == repo


def test_files_outside_the_shipped_packages_fall_back_to_the_chain(tmp_path):
    repo = _tree(tmp_path, {
        "runtimes/__init__.py": "",
        "runtimes/pyproject.toml": '[tool.hatch.build.targets.wheel]\npackages = ["worker"]\n',
        "runtimes/worker/__init__.py": "",
        "runtimes/worker/loop.py": "",
        "runtimes/tools/__init__.py": "",
        "runtimes/tools/cli.py": "",
    })
    files = [repo / "runtimes/worker/loop.py", repo / "runtimes/tools/cli.py"]
    roots = import_roots(repo, files)

    assert roots == (ImportRoot(repo, None), ImportRoot(repo / "runtimes", repo / "runtimes"))
    assert [module_name(path, roots) for path in files] == [
        "worker.loop", "runtimes.tools.cli"]


def test_a_src_folder_is_never_a_namespace_portion(tmp_path):
    repo = _tree(tmp_path, {
        "libs/__init__.py": "",
        "libs/shared/__init__.py": "",
        "libs/shared/pyproject.toml": "[tool.pdm]\ndistribution = true\n",
        "libs/shared/src/shared/__init__.py": "",
        "libs/shared/src/shared/bus.py": "",
    })

    assert _root_and_module(repo, "libs/shared/src/shared/bus.py") == (
        "libs/shared/src", "shared.bus")


def test_test_packages(tmp_path):
    repo = _tree(tmp_path, {
        "pyproject.toml": "",
        "conftest.py": "",  # the project's own conftest does not make it a test folder
        "orders/__init__.py": "",
        "orders/bus.py": "",
        "tests/unit/helpers.py": "",
        "orders/testing/__init__.py": "",
        "e2e/conftest.py": "",
        "e2e/flows/check.py": "",
    })
    model = Packaging(repo)

    assert not model.is_test_folder(repo / "orders")
    assert not model.is_test_file(repo / "orders/bus.py")
    assert model.is_test_folder(repo / "tests/unit")
    assert model.is_test_folder(repo / "orders/testing")
    assert model.is_test_folder(repo / "e2e/flows")
    assert model.is_test_file(repo / "orders/test_bus.py")
    assert model.is_test_file(repo / "conftest.py")


def test_installable_projects_and_what_they_ship(tmp_path):
    repo = _tree(tmp_path, {
        "lib/pyproject.toml": '[project]\nname = "lib"\n',
        "lib/src/lib/__init__.py": "",
        "app/pyproject.toml": '[project]\nname = "app"\n[tool.pdm]\ndistribution = false\n',
        "app/app/__init__.py": "",
        "poem/pyproject.toml": '[tool.poetry]\nname = "p"\npackage-mode = false\n',
        "flat/pyproject.toml": '[project]\nname = "flat"\n',
        "flat/flat/__init__.py": "",
        "flat/tests/__init__.py": "",
    })
    model = Packaging(repo)

    assert model.shipped_packages(repo / "lib") == (repo / "lib/src/lib",)
    assert model.shipped_packages(repo / "app") == ()
    assert model.shipped_packages(repo / "poem") == ()
    assert model.shipped_packages(repo / "flat") == (repo / "flat/flat",)


def test_metadata_never_points_outside_its_project(tmp_path):
    repo = _tree(tmp_path, {
        "svc/pyproject.toml": '[tool.setuptools]\npackage-dir = {"" = "../elsewhere"}\n',
        "elsewhere/orders/__init__.py": "",
        "svc/orders/__init__.py": "",
        "svc/orders/bus.py": "",
    })

    assert Packaging(repo).distribution(repo / "svc").roots == ()
    assert _root_and_module(repo, "svc/orders/bus.py") == ("svc", "orders.bus")
