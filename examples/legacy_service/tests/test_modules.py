import importlib
import pkgutil

import legacy_service


def test_every_module_imports():
    names = [info.name for info in pkgutil.iter_modules(legacy_service.__path__)]

    for name in names:
        importlib.import_module(f"legacy_service.{name}")

    assert {"app", "worker", "admin", "consumer", "handlers"} <= set(names)
