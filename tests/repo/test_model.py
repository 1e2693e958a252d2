"""The repo model on small repos written into tmp_path."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import pytest

from scaffold.config import Config
from scaffold.repo import ParamKind, RepoModel, import_roots, module_name


def write(root: Path, files: dict[str, str]) -> list[Path]:
    paths = []
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        paths.append(path)
    return paths


def build(root: Path, files: dict[str, str], helper: str | None = None) -> RepoModel:
    paths = write(root, files)
    return RepoModel.build(root, paths, Config(root=root, helper_module=helper))


HELPER = {
    "libs/helper/src/helper/__init__.py": "from .observability import init_tracing\n",
    "libs/helper/src/helper/observability/__init__.py": """\
        from .tracing import init_tracing, trace_operation
        """,
    "libs/helper/src/helper/observability/tracing.py": """\
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        def init_tracing(service_name: str) -> trace.Tracer:
            provider = TracerProvider(resource=None)
            trace.set_tracer_provider(provider)
            return trace.get_tracer(service_name)

        def trace_operation(tracer, name, attributes=None): ...
        """,
    "services/__init__.py": "",
    "services/shop/__init__.py": "",
}


def test_modules_are_named_from_their_import_root(tmp_path: Path) -> None:
    model = build(tmp_path, {**HELPER, "services/shop/app.py": "", "tool.py": ""})
    assert model.module_of(tmp_path / "services/shop/app.py") == "services.shop.app"
    assert model.module_of(tmp_path / "libs/helper/src/helper/observability/tracing.py") \
        == "helper.observability.tracing"
    assert model.module_of(tmp_path / "libs/helper/src/helper/__init__.py") == "helper"
    assert model.module_of(tmp_path / "tool.py") == "tool"
    assert model.file_of("helper.observability") == (
        tmp_path / "libs/helper/src/helper/observability/__init__.py")
    assert model.module("helper").is_package


def test_placeholder_roots_count_src_as_the_root(tmp_path: Path) -> None:
    files = write(tmp_path, {"pkg/src/lib/__init__.py": "", "pkg/src/lib/core.py": ""})
    (tmp_path / "pkg/pyproject.toml").write_text("")
    roots = import_roots(tmp_path, files)
    assert [root.path for root in roots] == [tmp_path / "pkg/src"]
    assert roots[0].project == tmp_path / "pkg"
    assert module_name(tmp_path / "pkg/src/lib/core.py", roots) == "lib.core"
    assert module_name(tmp_path / "elsewhere.py", roots) is None


def test_names_resolve_through_imports_and_re_exports(tmp_path: Path) -> None:
    model = build(tmp_path, {**HELPER, "services/shop/setup.py": """\
        from helper import init_tracing
        import helper.observability as obs
        from opentelemetry.sdk.trace import TracerProvider as TP
        """})
    where = "helper.observability.tracing.init_tracing"
    assert model.resolve("services.shop.setup", "init_tracing") == where
    assert model.resolve("services.shop.setup", "obs.init_tracing") == where
    assert model.resolve("services.shop.setup", "TP") == "opentelemetry.sdk.trace.TracerProvider"
    assert model.resolve("services.shop.setup", "undefined_name") is None
    assert model.function("helper.init_tracing").dotted == where


def test_signatures_keep_kinds_annotations_and_defaults(tmp_path: Path) -> None:
    model = build(tmp_path, {"bus.py": """\
        class Bus:
            async def publish(self, topic: str, envelope, /, key: str | None = None, *args,
                              headers: dict[str, str] | None = None, **kwargs) -> None:
                ...
        """})
    publish = model.function("bus.Bus.publish")
    assert publish is not None and publish.is_async and publish.owner == "bus.Bus"
    assert [(p.name, p.kind) for p in publish.params] == [
        ("self", ParamKind.POSITIONAL_ONLY), ("topic", ParamKind.POSITIONAL_ONLY),
        ("envelope", ParamKind.POSITIONAL_ONLY), ("key", ParamKind.POSITIONAL),
        ("args", ParamKind.VAR_POSITIONAL), ("headers", ParamKind.KEYWORD_ONLY),
        ("kwargs", ParamKind.VAR_KEYWORD)]
    headers = publish.param("headers")
    assert headers is not None
    assert (headers.annotation, headers.default) == ("dict[str, str] | None", "None")
    assert publish.param("key").default == "None"
    assert publish.returns == "None"
    assert model.class_("bus.Bus").methods == ("publish",)


def test_bases_resolve_and_methods_are_found_through_them(tmp_path: Path) -> None:
    model = build(tmp_path, {
        "lib/__init__.py": "from .app import BaseApp\n",
        "lib/app.py": """\
            from quart import Quart

            class BaseApp(Quart):
                def setup(self): ...
            """,
        "svc.py": """\
            import lib

            class App(lib.BaseApp):
                def run(self):
                    self.setup()
            """,
    })
    assert model.bases("svc.App") == ("lib.app.BaseApp",)
    assert model.mro("svc.App") == ("svc.App", "lib.app.BaseApp", "quart.Quart")
    assert model.is_subclass("svc.App", {"quart.Quart"})
    assert not model.is_subclass("lib.app.BaseApp", {"fastapi.FastAPI"})
    assert model.method("svc.App", "setup") == "lib.app.BaseApp.setup"
    assert [target for _, target in model.callees("svc.App.run")] == ["lib.app.BaseApp.setup"]


def test_calls_resolve_to_module_functions_methods_and_module_attributes(
        tmp_path: Path) -> None:
    model = build(tmp_path, {
        "svc/__init__.py": "",
        "svc/setup.py": "def initialize(app): ...\ndef other(): ...\n",
        "svc/app.py": """\
            from svc import setup
            import svc.setup
            from svc.setup import other

            class Service:
                def start(self):
                    self.connect()
                    setup.initialize(self)
                    svc.setup.other()

                def connect(self): ...

            def main():
                other()
                Service().start()
            """,
    })
    start = [target for _, target in model.callees("svc.app.Service.start")]
    assert start == ["svc.app.Service.connect", "svc.setup.initialize", "svc.setup.other"]
    main = [target for _, target in model.callees("svc.app.main")]
    assert main == ["svc.setup.other", "svc.app.Service.start", "svc.app.Service"]


def test_local_names_shadow_imports(tmp_path: Path) -> None:
    model = build(tmp_path, {"svc.py": """\
        from helper import init_tracing

        def configure(init_tracing):
            init_tracing("x")

        def later():
            from other import init_tracing as local_init
            local_init("y")
        """})
    assert model.callees("svc.configure") == ()
    assert [target for _, target in model.callees("svc.later")] == ["other.init_tracing"]


def test_tracing_set_up_is_reached_through_a_chain_of_repo_calls(tmp_path: Path) -> None:
    model = build(tmp_path, {
        **HELPER,
        "services/shop/startup_setup.py": """\
            from helper import init_tracing

            async def initialize_tracing(app) -> None:
                tracer = init_tracing("shop")
                app.tracer = tracer
            """,
        "services/shop/app.py": """\
            from quart import Quart
            from services.shop import startup_setup

            app = Quart(__name__)

            @app.before_serving
            async def startup() -> None:
                await startup_setup.initialize_tracing(app)

            @app.after_serving
            async def shutdown() -> None:
                pass
            """,
    }, helper="helper.observability")
    assert model.tracing_setup_path("services.shop.app.startup") == (
        "services.shop.app.startup", "services.shop.startup_setup.initialize_tracing",
        "helper.observability.tracing.init_tracing")
    assert not model.reaches_tracing_setup("services.shop.app.shutdown")
    assert not model.reaches_tracing_setup("services.shop.app.<module>")
    # without the helper configured, the chain still ends in the SDK's provider
    unconfigured = RepoModel.build(tmp_path, list(tmp_path.rglob("*.py")))
    assert unconfigured.tracing_setup_path("services.shop.app.startup")[-1] == (
        "opentelemetry.sdk.trace.TracerProvider")
    providers = model.tracer_providers("services.shop.app.startup")
    assert [call.keywords for call in providers] == [(("resource", "None"),)]


def test_nested_functions_and_main_blocks_are_functions_of_their_own(tmp_path: Path) -> None:
    model = build(tmp_path, {"svc.py": """\
        from kit.tracekit import init_tracing

        def create_app():
            async def lifespan(app):
                init_tracing("svc")
                yield
            return FastAPI(lifespan=lifespan)

        if __name__ == "__main__":
            import uvicorn
            uvicorn.run(create_app())
        """})
    lifespan = "svc.create_app.<locals>.lifespan"
    assert model.function(lifespan).params[0].name == "app"
    assert model.reaches_tracing_setup(lifespan)
    assert not model.reaches_tracing_setup("svc.create_app")  # lifespan is passed, not called
    assert model.module("svc").has_main_guard
    assert [target for _, target in model.callees("svc.<main>")] == [
        "uvicorn.run", "svc.create_app"]
    assert model.function_at("svc", 4) == model.function(lifespan)


def test_reaches_takes_any_predicate(tmp_path: Path) -> None:
    model = build(tmp_path, {"a.py": "import b\ndef f():\n    b.g()\n",
                             "b.py": "import os\ndef g():\n    os._exit(0)\n"})
    assert model.reaches("a.f", lambda target: target == "os._exit")
    assert model.path_to("a.f", lambda target: target == "os._exit") == ("a.f", "b.g", "os._exit")
    assert not model.reaches("a.f", lambda target: target == "sys.exit")


def test_test_files_are_left_out_unless_asked(tmp_path: Path) -> None:
    files = write(tmp_path, {"svc.py": "", "tests/test_svc.py": "", "conftest.py": ""})
    assert set(RepoModel.build(tmp_path, files).modules) == {"svc"}
    assert set(RepoModel.build(tmp_path, files, include_tests=True).modules) == {
        "svc", "test_svc", "conftest"}  # tests/ has no __init__.py: it is its own root


def test_a_file_the_stdlib_cannot_parse_is_a_module_without_facts(tmp_path: Path) -> None:
    model = build(tmp_path, {"broken.py": "def (:\n", "ok.py": "import broken\n"})
    assert model.module("broken").syntax_error
    assert model.resolve("ok", "broken.anything") == "broken.anything"


def test_the_model_pickles_with_its_answers(tmp_path: Path) -> None:
    model = build(tmp_path, {**HELPER, "services/shop/app.py": """\
        from helper import init_tracing
        def main():
            init_tracing("shop")
        """}, helper="helper.observability")
    assert model.reaches_tracing_setup("services.shop.app.main")
    copy = pickle.loads(pickle.dumps(model))
    assert copy.reaches_tracing_setup("services.shop.app.main")
    assert copy.function("services.shop.app.main") == model.function("services.shop.app.main")


@pytest.mark.parametrize("source", ["x = 1\n", b"\xef\xbb\xbfx = '\xc3\xa9'\n".decode()])
def test_a_single_file_model_names_the_file_by_its_stem(source: str, tmp_path: Path) -> None:
    model = RepoModel.single(source.encode(), tmp_path / "before.py")
    assert list(model.modules) == ["before"]


def test_find_takes_a_name_with_or_without_its_module(tmp_path: Path) -> None:
    model = build(tmp_path, {
        "lib/__init__.py": "from .bus import Bus\n",
        "lib/bus.py": "class Bus:\n    async def publish(self, topic, headers=None): ...\n",
        "other.py": "class Bus:\n    def publish(self): ...\n",
    })
    assert model.find("lib.Bus.publish") == ("lib.bus.Bus.publish",)
    assert model.find("Bus.publish") == ("lib.bus.Bus.publish", "other.Bus.publish")
    assert model.find("nowhere.Bus") == ()


def test_what_names_hold_follows_annotations_calls_and_factories(tmp_path: Path) -> None:
    model = build(tmp_path, {
        "lib/__init__.py": "from .bus import KafkaBus\n",
        "lib/bus.py": """\
            from aiokafka import AIOKafkaProducer


            class KafkaBus:
                def __init__(self, servers: str) -> None:
                    self.producer = AIOKafkaProducer(bootstrap_servers=servers)

                async def publish(self, topic: str, envelope, key: str | None = None,
                                  headers: dict[str, str] | None = None) -> None:
                    await self.producer.send_and_wait(topic, envelope, headers=headers)


            def make_bus() -> "KafkaBus":
                return KafkaBus("kafka:9092")
            """,
        "svc.py": """\
            from typing import Optional

            from lib import KafkaBus
            from lib.bus import make_bus

            BUS = make_bus()


            class Publisher:
                fallback: Optional[KafkaBus] = None

                def __init__(self, bus: KafkaBus) -> None:
                    self.bus = bus

                async def send(self, event) -> None:
                    await self.bus.publish("topic", event)
                    await BUS.publish("topic", event)
                    local = make_bus()
                    await local.publish("other", event)
            """,
    })
    assert model.type_of("lib.bus.KafkaBus.producer") == "aiokafka.AIOKafkaProducer"
    assert model.type_of("svc.BUS") == "lib.bus.KafkaBus"
    assert model.type_of("svc.Publisher.bus") == "lib.bus.KafkaBus"
    assert model.type_of("svc.Publisher.fallback") == "lib.bus.KafkaBus"
    assert model.type_of("lib.bus.make_bus()") == "lib.bus.KafkaBus"
    assert [target for _, target in model.callees("svc.Publisher.send")] == [
        "lib.bus.KafkaBus.publish", "lib.bus.KafkaBus.publish", "lib.bus.make_bus",
        "lib.bus.KafkaBus.publish"]
    assert [target for _, target in model.callees("lib.bus.KafkaBus.publish")] == [
        "aiokafka.AIOKafkaProducer.send_and_wait"]
    assert model.holders({"lib.bus.KafkaBus"}) == (
        "svc.BUS", "svc.Publisher.bus", "svc.Publisher.fallback")
    assert model.holders({"aiokafka.AIOKafkaProducer"}) == ("lib.bus.KafkaBus.producer",)
