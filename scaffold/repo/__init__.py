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
    model.find("KafkaBus.publish")                      # a configured name, module optional
    model.callees(dotted)                               # ((CallSite, canonical callee), ...)
    model.reaches(dotted, predicate), model.path_to(dotted, predicate)
    model.reaches_tracing_setup(dotted)                 # a chain ends in init_tracing / SDK
    model.tracing_setup_path(dotted), model.tracer_providers(dotted)
    model.type_of("pkg.mod.Service.bus")                # what a variable/attribute holds
    model.holders({"aiokafka.AIOKafkaProducer"})        # which names hold an X

Names are absolute dotted names; ``canonical`` follows one to its definition (re-exports,
base classes, what attributes and factories hold). Test files are left out of the model
(``include_tests=True`` puts them in); a rule that reads the model sets ``USES_REPO = True``
(without it the engine builds none, and ``self.repo`` is a model of the file alone).

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
from scaffold.repo.packaging import PROJECT_FILES, ImportRoot, Packaging, import_roots, module_name

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
    "PROJECT_FILES",
    "Packaging",
    "ParamKind",
    "Predicate",
    "RepoModel",
    "import_roots",
    "module_name",
]
