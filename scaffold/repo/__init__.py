"""The repo model every rule reads: modules, definitions, signatures and calls of the whole
repo, built once per run from the stdlib ``ast`` (never LibCST).

::

    from scaffold.repo import RepoModel

    model = RepoModel.build(root, files, config)        # config: scaffold.config.Config
    module = model.module_of(path)                      # "services.x.app"
    model.file_of(module)                               # Path
    model.resolve(module, "startup_setup.initialize_tracing")  # canonical dotted, or None
    model.function("pkg.bus.KafkaBus.publish").param("headers").annotation
    model.class_("pkg.app.HuleEduApp"), model.is_subclass(cls, {"quart.Quart"})
    model.callees(dotted), model.reaches(dotted, predicate)
    model.reaches_tracing_setup(dotted)                 # a chain ends in init_tracing / SDK

Engine: one model per run is handed to every rule in ``CodemodContext.scratch[REPO]``
(``scaffold.engine.sites.REPO``); ``Codemod.repo`` and ``Codemod.module_name`` read it. This
package imports only the standard library and ``scaffold.config``; every record is a frozen
dataclass, and the model pickles (rules run in worker processes).
"""

from scaffold.repo.info import (
    LOCALS,
    MAIN_CODE,
    MODULE_CODE,
    Binding,
    CallSite,
    ClassInfo,
    FunctionInfo,
    ImportInfo,
    ModuleInfo,
    Param,
    ParamKind,
)
from scaffold.repo.model import INIT_TRACING, SDK_PROVIDER, SDK_SETUP, Predicate, RepoModel
from scaffold.repo.packaging import ImportRoot, import_roots, module_name

__all__ = [
    "INIT_TRACING",
    "LOCALS",
    "MAIN_CODE",
    "MODULE_CODE",
    "SDK_PROVIDER",
    "SDK_SETUP",
    "Binding",
    "CallSite",
    "ClassInfo",
    "FunctionInfo",
    "ImportInfo",
    "ImportRoot",
    "ModuleInfo",
    "Param",
    "ParamKind",
    "Predicate",
    "RepoModel",
    "import_roots",
    "module_name",
]
