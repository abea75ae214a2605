"""`[chat]` and `[history]`: the chat key comes from the variable the config names, the
base URL must be http(s), and nothing else in the environment changes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from foreman.config import PACKAGED_CONFIG, Settings, apply_env, load_settings, settings_from_dict
from foreman.exceptions import ConfigError


def test_the_chat_key_comes_from_openai_api_key_by_default() -> None:
    s = load_settings(PACKAGED_CONFIG, env={"OPENAI_API_KEY": "sk-chat-1"})
    assert s.chat.api_key.get_secret_value() == "sk-chat-1"
    assert "sk-chat-1" not in repr(s)
    assert not load_settings(PACKAGED_CONFIG, env={}).chat.api_key


def test_api_key_env_names_another_variable(tmp_path: Path) -> None:
    f = tmp_path / "f.toml"
    f.write_text('[chat]\nbase_url = "https://llm.example.com/v1"\napi_key_env = "LLM_KEY"\n')
    env = {"OPENAI_API_KEY": "sk-openai", "LLM_KEY": "llm-secret"}
    s = load_settings(f, env=env)
    assert s.chat.api_key.get_secret_value() == "llm-secret"
    assert s.realtime.api_key.get_secret_value() == "sk-openai"  # each key to its own use
    assert not load_settings(f, env={"OPENAI_API_KEY": "sk-openai"}).chat.api_key


def test_an_empty_variable_leaves_the_key_unset() -> None:
    assert apply_env(Settings(), {"OPENAI_API_KEY": ""}) == Settings()


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"chat": {"base_url": "ws://x"}}, "'chat.base_url'"),
        ({"chat": {"api_key_env": "NOT A NAME"}}, "'chat.api_key_env'"),
        ({"chat": {"max_tool_rounds": 0}}, "'chat.max_tool_rounds'"),
        ({"history": {"summary": "poem"}}, "'history.summary'"),
        ({"history": {"seed_turns": -1}}, "'history.seed_turns'"),
    ],
)
def test_bad_chat_and_history_keys_are_named(doc: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        settings_from_dict(doc, source="f.toml")


def test_the_shipped_config_has_both_sections() -> None:
    s = load_settings(PACKAGED_CONFIG, env={})
    assert s.chat.enabled and s.chat.base_url.startswith("https://")
    assert s.history.seed_turns > 0 and s.history.summary == "model"
