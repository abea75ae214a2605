"""Through the whole server: the tools a session offers the model (its session.update, as the
mock Realtime server receives it) follow what is configured, and `GET /api/tools` says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from foreman.api.app import create_app
from foreman.config import Settings, StorageConfig, TwilioConfig
from foreman.testing.mock_realtime import MockRealtimeServer
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit

TWILIO = TwilioConfig(
    account_sid="AC" + "3" * 32,
    auth_token=SecretStr("tw-token"),
    from_number="+15550009999",
    public_url="https://voice.example.com",
)


async def offered_tools(settings: Settings) -> tuple[set[str], dict[str, Any]]:
    """(the tool names in the session.update the model receives, GET /api/tools)."""
    async with MockRealtimeServer() as mock:
        app = create_app(settings)
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=unit(20)) as api:
            start = await api.post("/api/realtime/start", json={"endpoint": mock.url})
            assert start.status_code == 200, start.text
            update = await mock.wait_for_client_event("session.update", timeout=unit(10))
            report = (await api.get("/api/tools")).json()
            await api.post("/api/realtime/stop")
    return {tool["name"] for tool in update["session"]["tools"]}, report


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings().replace(storage=StorageConfig(db_path=str(tmp_path / "foreman.db")))


async def test_without_twilio_send_sms_is_not_offered(settings: Settings) -> None:
    names, report = await offered_tools(settings)
    assert {"end_call", "get_time"} <= names
    assert not {"send_sms", "place_call", "send_email"} & names
    assert {t["name"] for t in report["available"]} == names
    why = {t["name"]: t["why"] for t in report["unavailable"]}
    assert why["send_sms"].startswith("set [twilio] account_sid (or TWILIO_ACCOUNT_SID)")
    assert report["config"] == "<defaults>" and report["tools_dir"] == settings.tools.dir
    assert "tw-token" not in str(report)


async def test_with_twilio_configured_send_sms_is_offered(settings: Settings) -> None:
    names, report = await offered_tools(settings.replace(twilio=TWILIO))
    assert {"end_call", "get_time", "send_sms", "place_call"} <= names
    assert [t["name"] for t in report["unavailable"]] == ["send_email"]
    assert "tw-token" not in str(report)
