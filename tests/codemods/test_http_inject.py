"""http-inject, executed: a real local HTTP server receives the caller's ``traceparent``.

The fixtures' clients (httpx and aiohttp) call an aiohttp web server on a loopback port under
a span; the rewritten clients send that span as the parent, with their own headers kept. The
unrewritten clients, called the same way, send no ``traceparent`` (the control).
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
from aiohttp import web
from opentelemetry import trace

from scaffold.codemods import codemods_by_id
from scaffold.engine import FileResult, Settings, Status, process_source
from tests.codemods.conftest import load_fixture


@pytest.fixture
async def content_service() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """An aiohttp server on a free loopback port recording the headers of every request."""
    received: list[dict[str, str]] = []

    async def answer(request: web.Request) -> web.Response:
        received.append(dict(request.headers))
        return web.json_response({"content_id": "c-1", "text": "t", "score": 1})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", received
    finally:
        await runner.cleanup()


async def _content_calls(module, base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        client = module.ContentServiceClient(http, base_url)
        await client.store("text", correlation_id="corr-1")
        await client.fetch("c-1")
        await client.delete("c-1", correlation_id="corr-1")
    async with aiohttp.ClientSession() as session:
        await module.score(session, f"{base_url}/score")


async def _called_under_a_span(call) -> trace.SpanContext:
    with trace.get_tracer("caller").start_as_current_span("caller") as caller:
        await call()
    return caller.get_span_context()


def _parent_of(headers: dict[str, str]) -> tuple[int, int] | None:
    value = {key.lower(): item for key, item in headers.items()}.get("traceparent")
    if value is None:
        return None
    _version, trace_id, span_id, _flags = value.split("-")
    return int(trace_id, 16), int(span_id, 16)


@pytest.mark.parametrize("version", ["before", "after"])
async def test_each_request_sends_the_callers_span_as_parent(version, content_service,
                                                            span_exporter):
    base_url, received = content_service
    module = load_fixture("http-inject", "clients_kit", version)
    caller = await _called_under_a_span(lambda: _content_calls(module, base_url))
    assert len(received) == 4
    parents = [_parent_of(headers) for headers in received]
    if version == "before":  # the control: the downstream service would start new traces
        assert parents == [None] * 4
    else:
        assert parents == [(caller.trace_id, caller.span_id)] * 4
    correlation = [headers.get("X-Correlation-ID") for headers in received]
    assert correlation == ["corr-1", None, "corr-1", None]  # the caller's own headers kept


@pytest.mark.parametrize("version", ["before", "after"])
async def test_client_built_in_the_function_without_the_kit(version, content_service,
                                                            span_exporter):
    base_url, received = content_service
    module = load_fixture("http-inject", "without_kit", version)
    caller = await _called_under_a_span(
        lambda: module.fetch_all(base_url, ["a", "b"]))
    expected = None if version == "before" else (caller.trace_id, caller.span_id)
    assert [_parent_of(headers) for headers in received] == [expected, expected]


async def test_without_a_current_span_nothing_is_sent(content_service, span_exporter):
    base_url, received = content_service
    module = load_fixture("http-inject", "clients_kit", "after")
    await _content_calls(module, base_url)
    assert [_parent_of(headers) for headers in received] == [None] * 4


async def _shared_header_calls(module, base_url: str) -> list[dict[str, str]]:
    """Every request of the shared_headers fixtures' clients; the dicts the callers keep."""
    caller = {"X-Correlation-ID": "corr-1"}
    async with httpx.AsyncClient() as http:
        gateway = module.GatewayHttpClient(http, base_url)
        send = getattr(gateway, "post", None) or gateway.patch
        await send("/v1/batches", json={}, headers=caller)
        await send("/v1/batches", json={})  # no headers: None
        if hasattr(module, "BaseHttpClient"):
            await gateway.class_info("b-1", "corr-2")
            await gateway.health()
            async with aiohttp.ClientSession() as session:
                base = module.BaseHttpClient(session, base_url)
                await base.get("/v1/text", headers=caller)
                await base.get("/v1/text")
                await base.check("text", "corr-3")  # headers passed positionally
            return [caller, gateway._headers]
        await gateway.state("corr-2")
    return [caller]


@pytest.mark.parametrize("version", ["before", "after"])
@pytest.mark.parametrize("case", ["shared_headers", "shared_headers_kit"])
async def test_a_shared_header_dict_is_copied_not_changed(case, version, content_service,
                                                         span_exporter):
    base_url, received = content_service
    module = load_fixture("http-inject", case, version)
    kept: list[dict[str, str]] = []

    async def calls() -> None:
        kept.extend(await _shared_header_calls(module, base_url))

    caller = await _called_under_a_span(calls)
    expected = None if version == "before" else (caller.trace_id, caller.span_id)
    assert [_parent_of(headers) for headers in received] == [expected] * len(received)
    assert len(received) == (7 if case == "shared_headers" else 3)
    # the dicts the callers hold are what they were: the context went into copies
    assert kept[0] == {"X-Correlation-ID": "corr-1"}
    assert kept[1:] in ([], [{"X-Service-ID": "gateway"}])
    sent = [headers.get("X-Correlation-ID") for headers in received]
    assert sent[0] == "corr-1" and sent[1] is None  # the caller's own headers kept


def _rewrite(source: str, **options) -> FileResult:
    settings = Settings(options={"http-inject": options}) if options else Settings()
    return process_source(textwrap.dedent(source).encode(), "service/clients.py",
                          [codemods_by_id()["http-inject"]], settings)


@pytest.mark.parametrize(
    ("url", "internal"),
    [
        ('"http://content_service:8000/v1"', True),  # one label: a compose or cluster service
        ('"http://localhost:9000"', True),
        ('f"http://127.0.0.1:{port}/x"', True),
        ('"http://10.1.2.3/v1"', True),
        ('"http://search.prod.svc.cluster.local/q"', True),
        ('"http://vault.internal/v1"', True),
        ('"https://api.openai.com/v1/chat/completions"', False),
        ('f"https://api.openai.com/v1/{model}"', False),
        ('"https://8.8.8.8/dns"', False),
        ("settings.CONTENT_SERVICE_URL", True),
        ('f"{settings.content_service_base_url}/x"', True),
        ('os.getenv("FILE_SERVICE_URL") + "/files"', True),
        ("settings.BOS_URL", False),  # reported: no name says it is internal
        ('f"https://{tenant}.example.com/x"', False),  # the host is built: reported
    ],
)
def test_only_hosts_the_code_shows_internal_get_the_context(url, internal):
    result = _rewrite(f"""\
        import os
        import httpx

        def call(settings, port, model, tenant):
            return httpx.get({url})
    """)
    assert (result.status is Status.CHANGED) is internal, result.findings


def test_internal_hosts_and_names_are_options():
    source = """\
        import httpx

        def call(settings):
            httpx.get("https://essays.corp.example.com/v1")
            httpx.get(settings.BOS_URL)
    """
    assert _rewrite(source).status is Status.UNCHANGED
    result = _rewrite(source, **{"internal-hosts": ["*.corp.example.com"],
                                 "internal-url-names": ["bos_url"]})
    assert result.updated.count("inject(trace_headers") == 2


def test_a_wrong_option_is_a_configuration_error(tmp_path):
    from scaffold.api import Options, run
    from scaffold.config import ConfigError

    (tmp_path / "pyproject.toml").write_text(
        '[tool.scaffold.options.http-inject]\ninternal-hosts = "*.svc"\n')
    (tmp_path / "app.py").write_text("import httpx\n")
    with pytest.raises(ConfigError, match="internal-hosts"):
        run([tmp_path], [codemods_by_id()["http-inject"]], Options(jobs=1))


@pytest.mark.parametrize(
    "instrumentation",
    [
        "HTTPXClientInstrumentor.instrument_client(client)",
        "HTTPXClientInstrumentor().instrument_client(client)",
        "HTTPXClientInstrumentor().instrument()",
    ],
)
def test_an_instrumented_client_is_left_alone(instrumentation):
    source = """\
        import httpx
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        client = httpx.Client()
        {line}

        def call(content_service_url):
            return client.get(content_service_url)
    """
    assert _rewrite(source.format(line="")).status is Status.CHANGED  # the control
    result = _rewrite(source.format(line=instrumentation))
    assert result.status is Status.UNCHANGED and not result.findings


def test_a_private_function_s_parameter_is_followed_only_to_all_its_callers():
    source = """\
        import httpx

        class Client:
            def __init__(self, settings):
                self.settings = settings

            def _get(self, url):
                return httpx.get(url)

            def state(self):
                return self._get(f"{{self.settings.CONTENT_SERVICE_URL}}/state")
            {extra}
    """
    assert _rewrite(source.format(extra="")).status is Status.CHANGED
    passed_on = "def later(self, retry):\n                return retry(self._get)"
    result = _rewrite(source.format(extra=passed_on))  # called where this file cannot see
    assert result.status is Status.UNCHANGED
    assert [f.message.split(",")[1] for f in result.findings] == [
        " and its host comes from `url`"]


def test_the_temporary_is_typed_for_mypy(tmp_path):
    from mypy import api

    result = _rewrite("""\
        import aiohttp

        async def fetch(session: aiohttp.ClientSession, content_service_url: str) -> int:
            async with session.get(content_service_url) as response:
                return response.status

        def ping(content_service_url):  # untyped: checked under check_untyped_defs only
            import httpx
            return httpx.get(content_service_url, headers={"Accept": "text/plain"})
    """)
    assert result.updated.count("trace_headers: dict[str, str] =") == 2
    module = tmp_path / "clients.py"
    module.write_text(result.updated)
    out, _, status = api.run(["--check-untyped-defs", "--no-incremental",
                              "--cache-dir", str(tmp_path / ".mypy"), str(module)])
    assert status == 0, out


@pytest.mark.parametrize("version", ["before", "after"])
async def test_calls_through_a_protocol_carry_the_context_its_implementation_adds(
        version, content_service, span_exporter):
    base_url, received = content_service
    module = load_fixture("http-inject", "protocol_implementation", version)
    module.settings = module.Settings(BOS_URL=base_url, FILE_SERVICE_URL=base_url)
    kept = {"X-Correlation-ID": "corr-2"}

    async def calls() -> None:
        async with httpx.AsyncClient() as http:
            client = module.ApiGatewayHttpClient(http)  # what the container injects
            await module.register_batch({"n": 1}, client, "corr-1")
            await module.upload_batch(client, kept)

    caller = await _called_under_a_span(calls)
    expected = None if version == "before" else (caller.trace_id, caller.span_id)
    assert [_parent_of(headers) for headers in received] == [expected, expected]
    assert [headers.get("X-Correlation-ID") for headers in received] == ["corr-1", "corr-2"]
    assert kept == {"X-Correlation-ID": "corr-2"}  # the route's own dict is not written to


_GATEWAY = {
    "gateway/__init__.py": "",
    "gateway/config.py": '''\
        from pydantic import BaseModel, Field


        class Settings(BaseModel):
            BOS_URL: str = Field(default="http://batch_orchestrator_service:5000")
            PARTNER_URL: str = "https://api.partner.example.com/v1"


        settings = Settings()
    ''',
    "gateway/protocols.py": '''\
        from typing import Protocol

        import httpx


        class HttpClientProtocol(Protocol):
            async def get(self, url: str, *, headers: dict[str, str] | None = None
                          ) -> httpx.Response: ...
    ''',
    "gateway/implementations/__init__.py": "",
    "gateway/implementations/http_client.py": '''\
        import httpx

        from gateway.protocols import HttpClientProtocol


        class GatewayHttpClient(HttpClientProtocol):
            def __init__(self, client: httpx.AsyncClient) -> None:
                self._client = client

            async def get(self, url: str, *, headers: dict[str, str] | None = None
                          ) -> httpx.Response:
                return await self._client.get(url=url, headers=headers)
    ''',
    "gateway/routers/__init__.py": "",
    "gateway/routers/batches.py": '''\
        from dishka.integrations.fastapi import FromDishka

        from ..config import settings
        from ..protocols import HttpClientProtocol


        async def status(batch_id: str, http_client: FromDishka[HttpClientProtocol]):
            url = f"{settings.BOS_URL}/v1/batches/{batch_id}"
            return await http_client.get(url, headers={"X-Correlation-ID": batch_id})
    ''',
}


def _gateway_run(tmp_path, extra: dict[str, str] | None = None):
    from scaffold.engine import Options, run

    for name, text in {**_GATEWAY, **(extra or {})}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "gateway"\nversion = "0"\n')
    result = run([tmp_path], [codemods_by_id()["http-inject"]], Options(jobs=1))
    return {str(r.path).replace(str(tmp_path) + "/", ""): r for r in result.results}


def test_the_implementation_of_a_protocol_its_callers_use_for_internal_hosts_injects(tmp_path):
    results = _gateway_run(tmp_path)
    implementation = results["gateway/implementations/http_client.py"]
    assert implementation.status is Status.CHANGED, implementation.findings
    assert "dict(headers or {})" in implementation.updated  # a copy: the route's dict kept
    router = results.get("gateway/routers/batches.py")
    assert router is None or router.status is Status.UNCHANGED  # the fix is in one place


def test_one_caller_to_a_third_party_keeps_the_implementation_unchanged(tmp_path):
    partner = {"gateway/routers/partner.py": '''\
        from ..config import settings
        from ..protocols import HttpClientProtocol


        async def quote(http_client: HttpClientProtocol):
            return await http_client.get(f"{settings.PARTNER_URL}/quote")
    '''}
    implementation = _gateway_run(tmp_path, partner)["gateway/implementations/http_client.py"]
    assert implementation.status is Status.UNCHANGED
    assert not implementation.findings  # a third party's host: left alone, silently


@pytest.mark.parametrize("version", ["before", "after"])
async def test_a_request_function_handed_to_a_circuit_breaker_sends_the_context(
        version, content_service, span_exporter):
    base_url, received = content_service
    module = load_fixture("http-inject", "handed_to_a_breaker", version)

    async def calls() -> None:
        async with aiohttp.ClientSession() as session:
            for breaker in (module.CircuitBreaker(), None):
                await module.LanguageToolClient(base_url, breaker).check_grammar("t", session)

    caller = await _called_under_a_span(calls)
    expected = None if version == "before" else (caller.trace_id, caller.span_id)
    assert [_parent_of(headers) for headers in received] == [expected, expected]
    assert [headers.get("Content-Type") for headers in received] == ["application/json"] * 2


def test_a_helper_s_result_is_copied_only_in_the_argument_itself():
    source = """\
        import httpx


        def build_internal_auth_headers(correlation_id: str) -> dict[str, str]:
            return {"X-Correlation-ID": correlation_id}


        async def state(client: httpx.AsyncClient, content_service_url: str, cid: str):
            return await client.get(content_service_url, headers=build_internal_auth_headers(cid))
    """
    without_kit = _rewrite(source)  # a copy on a line before would run it before the URL
    assert without_kit.status is Status.UNCHANGED
    assert [f.message.split(",")[0] for f in without_kit.findings] == [
        "headers come from `build_internal_auth_headers(cid)`"]
    settings = Settings(kit="kitpkg.tracekit")
    with_kit = process_source(textwrap.dedent(source).encode(), "service/clients.py",
                              [codemods_by_id()["http-inject"]], settings)
    assert "headers=inject_trace_context(dict(build_internal_auth_headers(cid)))" in (
        with_kit.updated)


@pytest.mark.parametrize(
    ("subclass", "changed"),
    [("", True), ("class Partner(Client):\n            pass\n", False)],
    ids=["constructed only here", "a subclass may pass another URL to __init__"],
)
def test_a_constructor_argument_is_followed_to_every_construction(subclass, changed):
    result = _rewrite(f"""\
        import httpx


        class Client:
            def __init__(self, base_url: str) -> None:
                self.base_url = base_url

            def state(self):
                return httpx.get(f"{{self.base_url}}/state")


        {subclass}
        def provide(settings):
            return Client(base_url="http://batch_orchestrator_service:5000")
    """)
    assert (result.status is Status.CHANGED) is changed, result.findings
