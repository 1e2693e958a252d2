"""bootstrap across files: start-up that sets tracing up in another module, apps of a shared
library's class, lifespans imported from elsewhere (a small HuleEdu-shaped repo, the engine)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from scaffold.api import Options, run
from scaffold.codemods.bootstrap import Bootstrap
from scaffold.engine import Kind, Status

CONFIG = """\
[tool.scaffold]
helper-module = "helper.observability"
"""

LIBRARY = {
    "libs/helper/src/helper/__init__.py": """\
        from .observability import init_tracing
        from .quart_app import HuleEduApp
        """,
    "libs/helper/src/helper/observability/__init__.py": "from .tracing import init_tracing\n",
    "libs/helper/src/helper/observability/tracing.py": """\
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider


        def init_tracing(service_name: str) -> trace.Tracer:
            resource = Resource.create({"service.name": service_name})
            provider = TracerProvider(resource=resource)
            trace.set_tracer_provider(provider)
            return trace.get_tracer(service_name)
        """,
    "libs/helper/src/helper/quart_app.py": """\
        from quart import Quart


        class HuleEduApp(Quart):
            pass
        """,
    "services/__init__.py": "",
}

# services/content_service: before_serving -> startup_setup.initialize_tracing -> init_tracing
CONTENT = {
    "services/content_service/__init__.py": "",
    "services/content_service/startup_setup.py": """\
        from helper import init_tracing
        from quart import Quart


        async def initialize_tracing(app: Quart) -> None:
            tracer = init_tracing("content_service")
            app.extensions["tracer"] = tracer
        """,
    "services/content_service/app.py": """\
        from quart import Quart

        from services.content_service import startup_setup

        app = Quart(__name__)


        @app.before_serving
        async def startup() -> None:
            try:
                await startup_setup.initialize_tracing(app)
            except Exception:
                raise


        @app.after_serving
        async def shutdown() -> None:
            await startup_setup.shutdown_services()


        if __name__ == "__main__":
            app.run()
        """,
}

# services/api_gateway_service: a factory without lifespan that sets tracing up elsewhere
GATEWAY = {
    "services/api_gateway_service/__init__.py": "",
    "services/api_gateway_service/app/__init__.py": "",
    "services/api_gateway_service/app/startup_setup.py": """\
        from fastapi import FastAPI
        from helper import init_tracing


        def setup_tracing_and_middleware(app: FastAPI):
            try:
                tracer = init_tracing("api_gateway_service")
                app.state.tracer = tracer
                return tracer
            except Exception:
                return None
        """,
    "services/api_gateway_service/app/main.py": """\
        from fastapi import FastAPI

        from services.api_gateway_service.app.startup_setup import setup_tracing_and_middleware


        def create_app() -> FastAPI:
            app = FastAPI(title="api_gateway_service")
            setup_tracing_and_middleware(app)
            return app


        app = create_app()
        """,
}

# services/websocket_service: a lifespan that starts Kafka; tracing set up in the factory
WEBSOCKET = {
    "services/websocket_service/__init__.py": "",
    "services/websocket_service/startup_setup.py": """\
        from fastapi import FastAPI
        from helper import init_tracing


        def setup_tracing(app: FastAPI) -> None:
            init_tracing("websocket_service")
        """,
    "services/websocket_service/main.py": """\
        from contextlib import asynccontextmanager

        from fastapi import FastAPI

        from services.websocket_service.startup_setup import setup_tracing


        @asynccontextmanager
        async def lifespan(app: FastAPI):
            await start_kafka_consumer(app.state.di_container)
            yield
            await stop_kafka_consumer()


        def create_app() -> FastAPI:
            app = FastAPI(title="websocket_service", lifespan=lifespan)
            if ENABLE_TRACING:
                setup_tracing(app)
            return app


        app = create_app()
        """,
}

# services/essay_lifecycle_service: an app of the library's Quart subclass, init at import
LIFECYCLE = {
    "services/essay_lifecycle_service/__init__.py": "",
    "services/essay_lifecycle_service/app.py": """\
        from helper import HuleEduApp, init_tracing

        app = HuleEduApp(__name__)

        # Initialize tracing early, before blueprint registration
        tracer = init_tracing("essay_lifecycle_api")
        app.extensions["tracer"] = tracer


        @app.before_serving
        async def startup() -> None:
            await initialize_services(app)


        if __name__ == "__main__":
            import asyncio

            import hypercorn.asyncio

            asyncio.run(hypercorn.asyncio.serve(app, config))
        """,
}

# lifespans imported from another module: one sets tracing up, one does not
LIFESPANS = {
    "services/grading_service/__init__.py": "",
    "services/grading_service/lifecycle.py": """\
        from contextlib import asynccontextmanager

        from services.grading_service import setup


        @asynccontextmanager
        async def traced_lifespan(app):
            setup.configure()
            yield


        @asynccontextmanager
        async def untraced_lifespan(app):
            yield
        """,
    "services/grading_service/setup.py": """\
        from helper.observability import init_tracing


        def configure() -> None:
            init_tracing("grading_service")
        """,
    "services/grading_service/api.py": """\
        from fastapi import FastAPI

        from services.grading_service.lifecycle import traced_lifespan

        app = FastAPI(lifespan=traced_lifespan)
        """,
    "services/grading_service/admin.py": """\
        from fastapi import FastAPI

        from services.grading_service.lifecycle import untraced_lifespan

        app = FastAPI(lifespan=untraced_lifespan)
        """,
}

# services/bff_teacher_service: no tracing anywhere (the finding that stays)
BFF = {
    "services/bff_teacher_service/__init__.py": "",
    "services/bff_teacher_service/app.py": """\
        from fastapi import FastAPI


        def create_app() -> FastAPI:
            app = FastAPI(title="bff_teacher_service")
            return app


        app = create_app()
        """,
}


def make_repo(root: Path, *parts: dict[str, str]) -> Path:
    (root / "pyproject.toml").write_text(CONFIG)
    for files in (LIBRARY, *parts):
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
    return root


def bootstrap(root: Path, *, jobs: int = 1):
    result = run([root], [Bootstrap], Options(jobs=jobs))
    findings = {(Path(f.path).relative_to(root).as_posix(), f.line, f.kind, f.message)
                for f in result.findings}
    changed = {Path(r.path).relative_to(root).as_posix(): r for r in result.changed}
    return findings, changed


def test_start_up_that_sets_tracing_up_in_another_module_is_left_alone(tmp_path: Path) -> None:
    findings, changed = bootstrap(make_repo(tmp_path, CONTENT, GATEWAY, WEBSOCKET))
    assert findings == set()
    assert changed == {}


def test_the_same_entry_points_without_their_set_up_are_reported(tmp_path: Path) -> None:
    """The control: the same repo, the set-up functions emptied, is not left alone."""
    root = make_repo(tmp_path, CONTENT, GATEWAY, WEBSOCKET)
    for setup in ("services/content_service/startup_setup.py",
                  "services/api_gateway_service/app/startup_setup.py",
                  "services/websocket_service/startup_setup.py"):
        path = root / setup
        path.write_text(path.read_text().replace('init_tracing("', 'print("'))
    findings, _ = bootstrap(root)
    where = {path for path, *_ in findings}
    assert where == {"services/content_service/app.py", "services/api_gateway_service/app/main.py",
                     "services/websocket_service/main.py"}


def test_an_app_of_a_library_subclass_gets_init_in_its_start_up_hook(tmp_path: Path) -> None:
    findings, changed = bootstrap(make_repo(tmp_path, LIFECYCLE), jobs=2)
    assert [(path, kind) for path, _, kind, _ in findings] == [
        ("services/essay_lifecycle_service/app.py", Kind.CHANGE)]
    result = changed["services/essay_lifecycle_service/app.py"]
    assert result.status is Status.CHANGED
    updated = result.updated
    # the helper's init_tracing (re-exported by its package) is kept, not swapped
    assert "from helper import HuleEduApp, init_tracing" in updated
    assert "helper.observability" not in updated
    start = updated.index("async def startup() -> None:")
    assert updated[start:].splitlines()[1].strip() == 'init_tracing("essay_lifecycle_api")'
    main_block = updated[updated.index('if __name__ == "__main__":'):]
    assert "init_tracing" not in main_block
    # the tracer left behind keeps the scope name the helper gave it (get_tracer(service_name))
    assert 'tracer = get_tracer("essay_lifecycle_api")' in updated


def test_lifespans_imported_from_another_module_are_followed(tmp_path: Path) -> None:
    findings, changed = bootstrap(make_repo(tmp_path, LIFESPANS, BFF))
    assert changed == {}
    assert {(path, line, kind) for path, line, kind, _ in findings} == {
        ("services/grading_service/admin.py", 5, Kind.FINDING),
        ("services/bff_teacher_service/app.py", 5, Kind.FINDING),
    }
    messages = {path: message for path, _, _, message in findings}
    assert "services.grading_service.lifecycle.untraced_lifespan" in messages[
        "services/grading_service/admin.py"]

