"""A malformed Realtime endpoint URL is a one-line 400 (or a config error), never a 500:
urllib and IDNA raise on such URLs, so they are judged before anything parses or dials them."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foreman.api.app import create_app
from foreman.config import settings_from_dict
from foreman.exceptions import ConfigError
from foreman.protocols.realtime.endpoint import endpoint_problem
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit

MALFORMED = [
    "ws://[::1",  # unbalanced IPv6 bracket: urlsplit raises
    "wss://host:99999",  # port out of range: .port raises
    "wss://host:abc/v1",
    "ws://[zz]/v1",
    "wss://" + "a" * 300 + ".example/v1",  # a label over 63 characters: IDNA raises
    "ws://\x00/v1",
    "wss://a b/v1",
    "not a url at all",
    "ws://",
    "ws://host:0/v1",
    "wss://api.openai.com@evil.example/v1",
    "ws://-bad-/v1",
]


@pytest.mark.parametrize("endpoint", MALFORMED)
def test_endpoint_problem_names_what_is_wrong_in_one_line(endpoint: str) -> None:
    problem = endpoint_problem(endpoint)
    assert problem is not None and "\n" not in problem and len(problem) < 100
    assert endpoint not in problem  # the URL itself is never echoed


@pytest.mark.parametrize(
    "endpoint",
    [
        "wss://api.openai.com/v1/realtime",
        "wss://api.openai.com./v1/realtime?model=x",
        "ws://127.0.0.1:9100/v1/realtime",
        "ws://[::1]:9100/v1/realtime",
        "ws://localhost/v1",
        "wss://bücher.example/v1",
    ],
)
def test_endpoint_problem_accepts_real_endpoints(endpoint: str) -> None:
    assert endpoint_problem(endpoint) is None


@given(st.text(max_size=60).map(lambda tail: "ws://" + tail) | st.text(max_size=60))
@settings(max_examples=300)
def test_endpoint_problem_never_raises(endpoint: str) -> None:
    problem = endpoint_problem(endpoint)
    assert problem is None or isinstance(problem, str)


async def test_start_with_a_malformed_endpoint_answers_400_not_500(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings_from_dict({"storage": {"db_path": str(tmp_path / "f.db")}}))
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=unit(10)) as c:
        for endpoint in MALFORMED:
            r = await c.post("/api/realtime/start", json={"endpoint": endpoint})
            assert r.status_code == 400, (endpoint, r.status_code, r.text)
            detail = r.json()["detail"]
            assert detail.startswith("endpoint ") and "\n" not in detail, detail
        status = (await c.get("/api/realtime/status")).json()
        assert status["active"] is False


@pytest.mark.parametrize("endpoint", ["ws://[::1", "wss://host:99999/v1", "wss://a b/v1"])
def test_a_malformed_endpoint_in_the_config_file_is_a_one_line_error(endpoint: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings_from_dict({"realtime": {"endpoint": endpoint}})
    assert str(err.value).startswith("<dict>: 'realtime.endpoint' ")
    assert "\n" not in str(err.value)
