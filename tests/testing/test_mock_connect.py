"""Connection handshake and framing rules of the mock."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from foreman.testing.mock_realtime import MockRealtimeServer

from .conftest import Client, types, unit

MODEL = "?model=gpt-realtime-2.1"


async def test_session_created_is_first_with_live_defaults(
    mock_realtime: MockRealtimeServer,
) -> None:
    async with connect(mock_realtime.url + MODEL, max_size=None) as ws:
        first = json.loads(await ws.recv())
    assert first["type"] == "session.created"
    assert first["event_id"].startswith("event_")
    s = first["session"]
    assert s["type"] == "realtime" and s["object"] == "realtime.session"
    assert s["id"].startswith("sess_") and s["model"] == "gpt-realtime-2.1"
    assert s["expires_at"] > 0
    assert s["output_modalities"] == ["audio"]
    assert s["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    td = s["audio"]["input"]["turn_detection"]
    assert td["type"] == "server_vad" and td["silence_duration_ms"] == 200
    session = await mock_realtime.wait_for_session()
    assert session.model == "gpt-realtime-2.1"


async def test_beta_header_is_refused_with_4000(mock_realtime: MockRealtimeServer) -> None:
    async with connect(
        mock_realtime.url + MODEL, max_size=None, additional_headers={"OpenAI-Beta": "realtime=v1"}
    ) as ws:
        event = json.loads(await ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert event["type"] == "error"
    assert event["error"]["code"] == "beta_api_shape_disabled"
    assert event["error"]["message"] == (
        "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
    )
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
    assert closed.value.rcvd.reason == "invalid_request_error.beta_api_shape_disabled"


async def test_missing_model_is_refused_with_4000(mock_realtime: MockRealtimeServer) -> None:
    async with connect(mock_realtime.url, max_size=None) as ws:
        event = json.loads(await ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert event["error"]["code"] == "missing_model"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000


async def test_wrong_api_key_gets_http_401() -> None:
    async with MockRealtimeServer(api_key="sk-right") as mock:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                mock.url + MODEL, additional_headers={"Authorization": "Bearer sk-wrong"}
            ):
                pass
        assert refused.value.response.status_code == 401
        assert b"invalid_api_key" in refused.value.response.body
        with pytest.raises(InvalidStatus):
            async with connect(mock.url + MODEL):  # no header at all
                pass
        async with connect(
            mock.url + MODEL, additional_headers={"Authorization": "Bearer sk-right"}
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"


async def test_wrong_api_key_live_style_close_3000() -> None:
    async with (
        MockRealtimeServer(api_key="sk-right", auth_rejection="close") as mock,
        connect(mock.url + MODEL, additional_headers={"Authorization": "Bearer x"}) as ws,
    ):
        event = json.loads(await ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert event["error"]["code"] == "invalid_api_key"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 3000


async def test_unknown_path_is_404(mock_realtime: MockRealtimeServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(mock_realtime.url.replace("/v1/realtime", "/v1/other") + MODEL):
            pass
    assert refused.value.response.status_code == 404


async def test_unknown_type_bad_json_and_binary_are_non_fatal_errors(client: Client) -> None:
    await client.send({"type": "nope", "event_id": "evt_1"})
    err = (await client.until("error"))[-1]["error"]
    assert err["code"] == "invalid_value" and err["param"] == "type"
    assert err["event_id"] == "evt_1"
    assert err["message"].startswith(
        "Invalid value: 'nope'. Supported values are: 'session.update'"
    )
    assert err["message"].endswith("'response.create', and 'response.cancel'.")

    await client.ws.send("not json")
    err = (await client.until("error"))[-1]["error"]
    assert err["code"] == "invalid_json" and err["event_id"] is None

    await client.ws.send(b"\x00\x01")
    err = (await client.until("error"))[-1]["error"]
    assert err["code"] == "invalid_event"

    # the session is still usable
    await client.send({"type": "input_audio_buffer.clear"})
    assert (
        types(await client.until("input_audio_buffer.cleared"))[-1] == "input_audio_buffer.cleared"
    )


async def test_inject_pushes_an_arbitrary_server_event(
    mock_realtime: MockRealtimeServer, client: Client
) -> None:
    await mock_realtime.inject(
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 1234, "item_id": "item_x"}
    )
    event = await client.recv()
    assert event["type"] == "input_audio_buffer.speech_started"
    assert event["audio_start_ms"] == 1234 and event["event_id"].startswith("event_")


async def test_wait_for_client_event_resolves_and_times_out(
    mock_realtime: MockRealtimeServer, client: Client
) -> None:
    await client.send({"type": "input_audio_buffer.clear", "event_id": "a"})
    await client.send({"type": "input_audio_buffer.clear", "event_id": "b"})
    second = await mock_realtime.wait_for_client_event(
        "input_audio_buffer.clear", count=2, timeout=unit(5)
    )
    assert second["event_id"] == "b"
    with pytest.raises(TimeoutError, match=r"response\.create"):
        await mock_realtime.wait_for_client_event("response.create", timeout=0.05)


def test_the_central_validator_would_catch_a_bad_event() -> None:
    """The teardown check is real: beta names and missing fields fail it."""
    import pydantic

    from .conftest import SERVER_EVENT

    with pytest.raises(pydantic.ValidationError):
        SERVER_EVENT.validate_python({"type": "response.audio.delta", "event_id": "e", "delta": ""})
    with pytest.raises(pydantic.ValidationError):
        SERVER_EVENT.validate_python({"type": "conversation.item.truncated", "event_id": "e"})
    SERVER_EVENT.validate_python(
        {
            "type": "conversation.item.truncated",
            "event_id": "e",
            "item_id": "i",
            "content_index": 0,
            "audio_end_ms": 5,
        }
    )


async def test_a_mock_bug_answers_server_error_and_keeps_the_session(
    mock_realtime: MockRealtimeServer, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from foreman.testing.mock_realtime import session as session_module

    async def broken(s: object, event: object) -> None:
        raise RuntimeError("boom")

    with monkeypatch.context() as patch:
        patch.setitem(session_module.HANDLERS, "input_audio_buffer.clear", broken)
        await client.send({"type": "input_audio_buffer.clear", "event_id": "x"})
        err = (await client.until("error"))[-1]["error"]
    assert err["type"] == "server_error" and err["event_id"] == "x"
    await client.send({"type": "input_audio_buffer.clear"})
    await client.until("input_audio_buffer.cleared")
    session = await mock_realtime.wait_for_session()
    assert [str(e) for e in session.internal_errors] == ["boom"]
    session.internal_errors.clear()  # expected here; the teardown check fails on any other
