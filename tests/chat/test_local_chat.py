"""Without a key and without a chat server of its own, text chat uses the offline engine's
local model: the same in-process llama.cpp server the voice uses (here the small test model)."""

from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import SecretStr

from foreman.api.app import create_app
from foreman.chat.local_server import LocalChatClient
from foreman.config import Settings, local_chat_selected, settings_from_dict
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit


async def test_chat_without_a_key_answers_from_the_local_model(tmp_path: Path) -> None:
    settings = settings_from_dict(
        {"local": {"llm": "smollm2-135m"}, "storage": {"db_path": str(tmp_path / "f.db")}}
    )
    app = create_app(settings)
    assert isinstance(app.state.chat.llm, LocalChatClient)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=unit(120)) as api:
        r = await api.post("/api/chat", json={"message": "Say hello."})
        assert r.status_code == 200, r.text
        assert r.json()["reply"].strip()
        history = (await api.get("/api/history")).json()["conversations"]
        assert len(history) == 1


def test_a_key_or_a_chat_server_keeps_chat_off_the_local_model() -> None:
    assert local_chat_selected(settings_from_dict({}))
    for sections in (
        {"chat": {"base_url": "http://127.0.0.1:11434/v1"}},
        {"local": {"use": "never"}},
        {"chat": {"enabled": False}},
    ):
        assert not local_chat_selected(settings_from_dict(sections))
    keyed = Settings().chat.model_copy(update={"api_key": SecretStr("sk-test")})
    assert not local_chat_selected(Settings().replace(chat=keyed))
