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
        return web.json_response({"content_id": "c-1", "text": "t", "score": 1}, status=201)

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
