from __future__ import annotations

from pathlib import Path

import pytest

from foreman.config import DEFAULT_MODEL, Secret, load_settings, settings_from_dict
from foreman.exceptions import ConfigError


def test_shipped_config_loads_with_current_ga_model() -> None:
    settings = load_settings("config/foreman.toml", env={})
    assert settings.realtime.model == DEFAULT_MODEL != "gpt-realtime"
    assert settings.voice.wake_phrase == "hey vim"
    assert settings.server.host == "127.0.0.1"


def test_env_overrides_model_endpoint_and_key() -> None:
    env = {
        "OPENAI_API_KEY": "sk-test-123",
        "OPENAI_REALTIME_MODEL": "gpt-realtime-2.1-mini",
        "OPENAI_REALTIME_ENDPOINT": "ws://127.0.0.1:9/v1/realtime",
    }
    s = load_settings("config/foreman.toml", env=env)
    assert s.realtime.model == "gpt-realtime-2.1-mini"
    assert s.realtime.endpoint == "ws://127.0.0.1:9/v1/realtime"
    assert s.realtime.api_key.reveal() == "sk-test-123"
    assert "sk-test" not in repr(s)


def test_foreman_config_env_selects_the_file(tmp_path: Path) -> None:
    f = tmp_path / "f.toml"
    f.write_text("[server]\nport = 9999\n")
    assert load_settings(env={"FOREMAN_CONFIG": str(f)}).server.port == 9999
    with pytest.raises(ConfigError, match="not found"):
        load_settings(env={"FOREMAN_CONFIG": str(tmp_path / "missing.toml")})


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ('[realtime]\nmodle = "x"\n', "realtime.modle"),
        ('[realtime]\naudio_out_format = "mp3"\n', "realtime.audio_out_format"),
        ('[server]\nport = "80"\n', "server.port"),
        ("[realtime.turn_detection]\nsilence_duration_ms = true\n", "silence_duration_ms"),
        ("[bogus]\n", "[bogus]"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key_and_the_file(tmp_path: Path, doc: str, needle: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(doc)
    with pytest.raises(ConfigError) as info:
        load_settings(f, env={})
    assert needle in str(info.value)
    assert str(f) in str(info.value)


def test_secret_hides_itself() -> None:
    assert "abc" not in repr(Secret("abc"))
    assert Secret("abc").reveal() == "abc"
    assert settings_from_dict({}).realtime.api_key == ""


def test_relative_tools_dir_belongs_to_the_config_file(tmp_path: Path) -> None:
    f = tmp_path / "conf" / "foreman.toml"
    f.parent.mkdir()
    f.write_text('[tools]\ndir = "tools.d"\n')
    assert load_settings(f, env={}).tools.dir == str(f.parent / "tools.d")
    shipped = load_settings("config/foreman.toml", env={})
    assert Path(shipped.tools.dir).resolve() == Path("config/tools.d").resolve()
