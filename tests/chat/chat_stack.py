"""The real app on loopback with a chat model (the Chat Completions stand-in, driven
through the real `openai` client), the mock Realtime server, the Twilio REST stand-in and
a SQLite file: what the chat tests talk to."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from foreman.api.app import create_app
from foreman.bus import Published, Subscription
from foreman.config import Settings, settings_from_dict
from foreman.testing.chat_standin import Answer, ChatStandIn, Rule, When
from foreman.testing.mock_realtime import Call, Match, MockRealtimeServer, Reply, Scenario
from foreman.testing.mock_realtime import Rule as RtRule
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit
from foreman.testing.twilio_rest_standin import TwilioRestStandIn

ACCOUNT = "AC" + "4" * 32
TWILIO_TOKEN = "tw-token-chat"
ANN = "+15550000111"
SUMMARY = "SUMMARY: the owner said goodbye by voice."

CHAT_RULES = [
    Rule(
        When.user("text Ann"),
        Answer.say("Texting Ann.").and_call("send_sms", {"to": ANN, "body": "Running late"}),
    ),
    Rule(When.note("approval"), Answer.say("I asked for your approval; nothing is sent yet.")),
    Rule(When.tool_result("send_sms"), Answer.say("Sent.")),
    Rule(When.system_prompt("Summarize"), Answer.say(SUMMARY)),
]
VOICE = Scenario(
    [
        RtRule(Match.user_text("bye"), Reply.say("Goodbye!").then(Call.of("end_call", {}))),
    ]
)


@dataclasses.dataclass
class ChatStack:
    url: str
    api: httpx.AsyncClient
    app: Any
    llm: ChatStandIn
    mock: MockRealtimeServer
    rest: TwilioRestStandIn
    events: Subscription
    db_path: Path

    async def chat(self, message: str, **body: Any) -> httpx.Response:
        return await self.api.post("/api/chat", json={"message": message, **body})

    async def event(
        self,
        kind: str,
        pred: Callable[[dict[str, Any]], bool] = lambda d: True,
        timeout: float = 10.0,  # noqa: ASYNC109 - a deadline
    ) -> dict[str, Any]:
        async with asyncio.timeout(unit(timeout)):
            while True:
                item: Published = await self.events.get()
                if item.kind == kind and pred(item.data):
                    return item.data

    async def turns(self, conversation_id: str) -> list[dict[str, Any]]:
        r = await self.api.get(f"/api/history/{conversation_id}")
        assert r.status_code == 200, r.text
        return list(r.json()["turns"])


def chat_settings(
    *,
    mock_url: str,
    llm_url: str,
    rest_url: str,
    db_path: Path,
    chat: dict[str, Any] | None = None,
    **sections: Any,
) -> Settings:
    s = settings_from_dict(
        {
            "realtime": {"endpoint": mock_url},
            "chat": {"base_url": llm_url, "model": "standin", **(chat or {})},
            "storage": {"db_path": str(db_path)},
            "calendar": {"ics_path": str(db_path.parent / "cal.ics")},
            **sections,
        }
    )
    return s.replace(
        twilio=s.twilio.model_copy(
            update={
                "account_sid": ACCOUNT,
                "auth_token": SecretStr(TWILIO_TOKEN),
                "api_base": rest_url,
                "public_url": "https://voice.example.com",
                "from_number": "+15550009999",
            }
        )
    )


@contextlib.asynccontextmanager
async def chat_stack(
    tmp_path: Path,
    rules: Sequence[Rule] = CHAT_RULES,
    scenario: Scenario = VOICE,
    **settings: Any,
) -> AsyncIterator[ChatStack]:
    db_path = tmp_path / "foreman.db"
    async with (
        ChatStandIn(rules) as llm,
        MockRealtimeServer(scenario) as mock,
        TwilioRestStandIn(ACCOUNT, TWILIO_TOKEN) as rest,
    ):
        s = chat_settings(
            mock_url=mock.url,
            llm_url=llm.base_url,
            rest_url=rest.base_url,
            db_path=db_path,
            **settings,
        )
        app = create_app(s)
        events = app.state.bus.subscribe(maxsize=100_000)
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=unit(30)) as api:
            yield ChatStack(url, api, app, llm, mock, rest, events, db_path)


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out
