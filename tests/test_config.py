from __future__ import annotations

import subprocess
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr, ValidationError

import foreman.config
from foreman.audio.formats import AudioFormatName
from foreman.config import (
    DEFAULT_MODEL,
    ENV_OVERRIDES,
    PACKAGED_CONFIG,
    PACKAGED_SOURCE,
    PACKAGED_TOOLS_DIR,
    LimitsConfig,
    RealtimeConfig,
    RecoveryConfig,
    Settings,
    TwilioConfig,
    apply_env,
    load_settings,
    settings_from_dict,
)
from foreman.exceptions import ConfigError
from foreman.protocols.realtime.session_config import TurnDetection


def config_error(data: dict[str, Any], source: str = "test.toml") -> str:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(data, source=source)
    return str(info.value)


def assert_one_line_of_ours(message: str) -> None:
    assert "\n" not in message
    # pydantic's own wording and links never reach the user.
    for pydantic_text in ("validation error", "errors.pydantic.dev", "Input should", "type="):
        assert pydantic_text not in message


# --- loading -------------------------------------------------------------------------


def test_shipped_config_loads_with_current_ga_model() -> None:
    settings = load_settings(PACKAGED_CONFIG, env={})
    assert settings.realtime.model == DEFAULT_MODEL != "gpt-realtime"
    assert settings.voice.wake_phrase == "hey vim"
    assert settings.server.host == "127.0.0.1"
    assert settings.realtime.enabled is True
    assert settings.source == str(PACKAGED_CONFIG)


def test_env_overrides_model_endpoint_and_key() -> None:
    env = {
        "OPENAI_API_KEY": "sk-test-123",
        "OPENAI_REALTIME_MODEL": "gpt-realtime-2.1-mini",
        "OPENAI_REALTIME_ENDPOINT": "ws://127.0.0.1:9/v1/realtime",
    }
    s = load_settings(PACKAGED_CONFIG, env=env)
    assert s.realtime.model == "gpt-realtime-2.1-mini"
    assert s.realtime.endpoint == "ws://127.0.0.1:9/v1/realtime"
    assert s.realtime.api_key.get_secret_value() == "sk-test-123"
    assert "sk-test" not in repr(s)


def test_every_env_override_sets_its_key_and_empty_ones_are_ignored() -> None:
    values = {
        "OPENAI_API_KEY": "sk-env-key-4711",
        "OPENAI_REALTIME_MODEL": "gpt-realtime-2.1-mini",
        "OPENAI_REALTIME_ENDPOINT": "wss://realtime.example.com/v1/realtime",
        "TWILIO_ACCOUNT_SID": "AC" + "7" * 32,
        "TWILIO_AUTH_TOKEN": "twilio-env-token-0815",
        "FOREMAN_API_TOKEN": "foreman-env-token-42",
        "FOREMAN_DB": "/var/lib/foreman/env.db",
    }
    assert set(values) == set(ENV_OVERRIDES)
    s = apply_env(Settings(), values)
    for variable, (section, key) in ENV_OVERRIDES.items():
        value = getattr(getattr(s, section), key)
        if isinstance(value, SecretStr):
            assert value.get_secret_value() == values[variable]
            assert values[variable] not in repr(s)
        else:
            assert value == values[variable]
    assert apply_env(Settings(), dict.fromkeys(values, "")) == Settings()


def test_no_other_environment_variable_changes_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    # Names pydantic-settings would map by default (field names, JSON sections, nested
    # delimiters) and FOREMAN_* look-alikes: none of them is an override.
    stray = {
        "PORT": "1",
        "port": "1",
        "SERVER": '{"port": 1}',
        "server": '{"port": 1}',
        "realtime": '{"model": "stray"}',
        "MODEL": "stray",
        "API_KEY": "sk-stray",
        "FOREMAN_PORT": "1",
        "FOREMAN_SERVER__PORT": "1",
        "FOREMAN_REALTIME__MODEL": "stray",
        "FOREMAN_REALTIME_MODEL": "stray",
    }
    baseline = load_settings(PACKAGED_CONFIG, env={})
    assert load_settings(PACKAGED_CONFIG, env=stray) == baseline
    for name, value in stray.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    # The constructor reads nothing from the environment, not even the listed overrides.
    assert Settings() == Settings.model_validate({})
    assert not Settings().realtime.api_key


def test_load_settings_reads_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_REALTIME_MODEL", "gpt-realtime-from-env")
    assert load_settings(PACKAGED_CONFIG).realtime.model == "gpt-realtime-from-env"


def test_foreman_config_env_selects_the_file(tmp_path: Path) -> None:
    f = tmp_path / "f.toml"
    f.write_text("[server]\nport = 9999\n")
    assert load_settings(env={"FOREMAN_CONFIG": str(f)}).server.port == 9999
    with pytest.raises(ConfigError, match="not found"):
        load_settings(env={"FOREMAN_CONFIG": str(tmp_path / "missing.toml")})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="not a file"):
        load_settings(tmp_path, env={})


def test_without_the_default_file_the_defaults_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={"FOREMAN_DB": ":memory:"})
    assert s.source == PACKAGED_SOURCE and s.storage.db_path == ":memory:"
    # The packaged file writes down the defaults: loading it changes nothing else.
    assert s.model_copy(update={"source": "<defaults>", "storage": Settings().storage}) == (
        Settings()
    )


def test_relative_tools_dir_belongs_to_the_config_file(tmp_path: Path) -> None:
    f = tmp_path / "conf" / "foreman.toml"
    f.parent.mkdir()
    f.write_text('[tools]\ndir = "tools.d"\n')
    assert load_settings(f, env={}).tools.dir == str(f.parent / "tools.d")
    shipped = load_settings(PACKAGED_CONFIG, env={})
    assert Path(shipped.tools.dir).resolve() == PACKAGED_TOOLS_DIR.resolve()
    f.write_text(f'[tools]\ndir = "{tmp_path / "abs.d"}"\n')
    assert load_settings(f, env={}).tools.dir == str(tmp_path / "abs.d")


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ('[realtime]\nmodle = "x"\n', "realtime.modle"),
        ('[realtime]\naudio_out_format = "mp3"\n', "realtime.audio_out_format"),
        ('[server]\nport = "80"\n', "server.port"),
        ("[realtime.turn_detection]\nsilence_duration_ms = true\n", "silence_duration_ms"),
        ("[bogus]\n", "[bogus]"),
        ("[server\n", "not valid TOML"),
        ("[Server]\nport = 1\n", "[Server]"),
        ('source = "elsewhere"\n', "[source]"),
        ("realtime = 5\n", "[realtime] must be a table"),
        ("[server]\nport = 0\n", "'server.port' must be at least 1"),
        ("[server]\nport = 65536\n", "'server.port' must be at most 65535"),
        ("[email]\nport = 0\n", "'email.port'"),
        ("[policy]\napproval_timeout_s = 0\n", "'policy.approval_timeout_s' must be more than 0"),
        ("[policy]\napproval_timeout_s = nan\n", "'policy.approval_timeout_s'"),
        ("[realtime]\naudio_in_hz = 22050\n", "'realtime.audio_in_hz' must be 8000, 16000"),
        ('[realtime]\nendpoint = "https://a.example/v1"\n', "must be a ws:// or wss:// URL"),
        ('[realtime]\nmodel = ""\n', "'realtime.model' must not be empty"),
        ('[realtime]\noutput_modalities = ["audio", "text"]\n', "realtime.output_modalities"),
        ("[realtime]\noutput_modalities = []\n", "realtime.output_modalities"),
        ('[realtime]\noutput_modalities = ["video"]\n', "realtime.output_modalities[0]"),
        ("[realtime.turn_detection]\nthreshold = 1.5\n", "realtime.turn_detection.threshold"),
        ("[realtime.turn_detection]\nprefix_padding_ms = -1\n", "prefix_padding_ms"),
        ("[twilio]\nmax_lead_ms = 5\n", "'twilio.max_lead_ms' must be at least 20"),
        ("[twilio]\nvalidate_signatures = 1\n", "must be true or false"),
        ("[identity]\ncontacts = {bob = 5}\n", "'identity.contacts.bob' must be a string"),
        ("[tools]\nstill_running_after_s = -1\n", "tools.still_running_after_s"),
    ],
)
def test_bad_config_names_the_key_and_the_file(tmp_path: Path, doc: str, needle: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(doc)
    with pytest.raises(ConfigError) as info:
        load_settings(f, env={})
    assert needle in str(info.value)
    assert str(info.value).startswith(f"{f}: ")
    assert_one_line_of_ours(str(info.value))


def test_non_secret_values_are_echoed_short() -> None:
    assert config_error({"server": {"port": "80"}}).endswith("got '80'")
    assert config_error({"twilio": {"validate_signatures": 1}}).endswith("got 1")
    long = "https://" + "x" * 500
    message = config_error({"realtime": {"endpoint": long}})
    assert "got 'https://xxx" in message and long not in message and len(message) < 150


def test_unknown_keys_list_the_valid_ones() -> None:
    message = config_error({"realtime": {"modle": "x"}})
    assert "unknown key 'realtime.modle'" in message
    valid = message.split("(valid: ")[1].rstrip(")").split(", ")
    assert valid == sorted(RealtimeConfig.model_fields)
    message = config_error({"bogus": {}})
    assert "unknown section [bogus]" in message
    valid = message.split("(valid: ")[1].rstrip(")").split(", ")
    assert "source" not in valid and "realtime" in valid and "storage" in valid
    message = config_error({"realtime": {"turn_detection": {"silence": 300}}})
    assert "'realtime.turn_detection.silence'" in message and "silence_duration_ms" in message


def test_a_misspelt_key_is_reported_first_and_further_problems_are_counted() -> None:
    message = config_error({"server": {"port": "x", "host": 5, "prot": 1}})
    assert "unknown key 'server.prot'" in message and message.endswith("(and 2 more problems)")
    assert config_error({"server": {"port": "x", "host": 5}}).endswith("(and 1 more problem)")


def _literal_fields() -> list[tuple[dict[str, Any], str, tuple[Any, ...]]]:
    """(bad data, key, allowed values) for every Literal-typed key."""
    td = typing.get_args(TurnDetection.model_fields["type"].annotation)
    eagerness = typing.get_args(TurnDetection.model_fields["eagerness"].annotation)
    modality = typing.get_args(
        typing.get_args(RealtimeConfig.model_fields["output_modalities"].annotation)[0]
    )
    realtime = RealtimeConfig.model_fields
    return [
        ({"realtime": {"transport": "pigeon"}}, "realtime.transport", ("websocket", "webrtc")),
        ({"realtime": {"audio_in_hz": 11025}}, "realtime.audio_in_hz", (8000, 16000, 24000, 48000)),
        ({"realtime": {"audio_out_format": "mp3"}}, "realtime.audio_out_format", _names()),
        ({"twilio": {"model_audio": "opus"}}, "twilio.model_audio", _names()),
        (
            {"realtime": {"noise_reduction": "studio"}},
            "realtime.noise_reduction",
            typing.get_args(realtime["noise_reduction"].annotation),
        ),
        (
            {"realtime": {"output_modalities": ["video"]}},
            "realtime.output_modalities[0]",
            modality,
        ),
        ({"realtime": {"turn_detection": {"type": "vad"}}}, "realtime.turn_detection.type", td),
        (
            {"realtime": {"turn_detection": {"eagerness": "eager"}}},
            "realtime.turn_detection.eagerness",
            eagerness,
        ),
    ]


def _names() -> tuple[str, ...]:
    return typing.get_args(AudioFormatName)


@pytest.mark.parametrize(
    ("data", "key", "allowed"), _literal_fields(), ids=[key for _, key, _ in _literal_fields()]
)
def test_literal_errors_list_the_allowed_values(
    data: dict[str, Any], key: str, allowed: tuple[Any, ...]
) -> None:
    message = config_error(data)
    assert f"'{key}' must be " in message
    for value in allowed:
        assert repr(value) in message
    assert_one_line_of_ours(message)


def test_audio_format_keys_take_exactly_the_names_from_name_accepts() -> None:
    for name in _names():
        data = {"realtime": {"audio_out_format": name}, "twilio": {"model_audio": name}}
        s = settings_from_dict(data)
        assert s.realtime.audio_out_format == s.twilio.model_audio == name


def test_types_are_not_converted_but_integers_are_numbers() -> None:
    s = settings_from_dict({"policy": {"approval_timeout_s": 5}})
    assert s.policy.approval_timeout_s == 5.0 and isinstance(s.policy.approval_timeout_s, float)
    assert "must be an integer" in config_error({"twilio": {"max_lead_ms": 400.0}})
    assert "must be a number" in config_error({"policy": {"approval_timeout_s": "5"}})
    assert "must be a list" in config_error({"server": {"allowed_hosts": "a.example"}})


def test_a_bad_environment_variable_is_blamed_on_the_variable(tmp_path: Path) -> None:
    f = tmp_path / "ok.toml"
    f.write_text("[server]\nport = 9000\n")
    with pytest.raises(ConfigError) as info:
        load_settings(f, env={"OPENAI_REALTIME_ENDPOINT": "https://api.openai.com/v1/realtime"})
    message = str(info.value)
    assert message.startswith(
        "environment variable OPENAI_REALTIME_ENDPOINT: must be a ws:// or wss:// URL, got "
    )
    assert str(f) not in message
    assert_one_line_of_ours(message)
    # A bad file is still the file's fault, whatever the environment says.
    f.write_text("[server]\nport = 0\n")
    with pytest.raises(ConfigError, match=f"^{f}: 'server.port'"):
        load_settings(f, env={"OPENAI_REALTIME_ENDPOINT": "https://api.openai.com/v1/realtime"})


# --- secrets -------------------------------------------------------------------------


def _secret_keys() -> list[tuple[str, str]]:
    out = []
    for section, info in Settings.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            fields = model.model_fields.items()
            out += [(section, key) for key, f in fields if f.annotation is SecretStr]
    return out


SECRET_KEYS = _secret_keys()

WRONG_TYPES: list[Callable[[str], Any]] = [
    lambda s: [s],
    lambda s: {"value": s},
    lambda s: {s: s},
    lambda s: [[s], {"x": s}],
]


def test_the_secret_keys_are_the_expected_ones() -> None:
    assert sorted(SECRET_KEYS) == [
        ("calendar", "password"),
        ("chat", "api_key"),
        ("email", "password"),
        ("realtime", "api_key"),
        ("server", "api_token"),
        ("twilio", "auth_token"),
    ]


@given(
    secret=st.text(min_size=6),
    where=st.sampled_from(SECRET_KEYS),
    wrap=st.sampled_from(WRONG_TYPES),
)
def test_a_secret_in_a_wrong_type_is_never_echoed(
    secret: str, where: tuple[str, str], wrap: Callable[[str], Any]
) -> None:
    section, key = where
    message = config_error({section: {key: wrap(secret)}})
    # The message does not depend on the secret at all (only its type is described), and a
    # value is not in it: any secret gives the message a placeholder gives, which lacks it.
    # (Searching for the secret itself fails on secrets like "must b", part of every message.)
    assert message == config_error({section: {key: wrap("placeholder")}})
    assert f"'{section}.{key}'" in message and "placeholder" not in message
    assert_one_line_of_ours(message)


@given(secret=st.text(min_size=6), where=st.sampled_from(SECRET_KEYS))
def test_a_secret_beside_another_problem_is_never_echoed(
    secret: str, where: tuple[str, str]
) -> None:
    section, key = where
    for extra in ({f"{key}_typo": secret}, {"bogus_key": 1}):
        message = config_error({section: {key: secret, **extra}})
        assert message == config_error({section: {key: "placeholder", **extra}})


def test_the_auth_token_example_from_a_file(tmp_path: Path) -> None:
    f = tmp_path / "f.toml"
    f.write_text('[twilio]\nauth_token = ["tw-0123456789abcdef"]\n')
    with pytest.raises(ConfigError) as info:
        load_settings(f, env={})
    assert "'twilio.auth_token' must be a string, got a list" in str(info.value)
    assert "0123456789" not in str(info.value)


def test_pydantic_errors_that_escape_do_not_show_the_secret() -> None:
    with pytest.raises(ValidationError) as info:
        TwilioConfig(auth_token=["tw-escaped-secret"])  # type: ignore[arg-type]
    assert "tw-escaped-secret" not in str(info.value)


def test_secrets_are_secret_str_and_never_in_repr() -> None:
    values = {
        ("realtime", "api_key"): "sk-abc-123456",
        ("server", "api_token"): "api-token-345678",
        ("twilio", "auth_token"): "twilio-token-9876",
        ("email", "password"): "mail-password-777",
        ("calendar", "password"): "caldav-password-555",
    }
    data: dict[str, dict[str, str]] = {}
    for (section, key), value in values.items():
        data.setdefault(section, {})[key] = value
    s = settings_from_dict(data)
    for (section, key), value in values.items():
        secret = getattr(getattr(s, section), key)
        assert isinstance(secret, SecretStr) and secret.get_secret_value() == value
        for shown in (repr(s), str(s), repr(getattr(s, section)), s.model_dump_json()):
            assert value not in shown
    assert "abc" not in repr(SecretStr("abc"))
    assert SecretStr("abc").get_secret_value() == "abc"
    assert settings_from_dict({}).realtime.api_key.get_secret_value() == ""
    assert not settings_from_dict({}).realtime.api_key  # an unset secret is falsy


# --- shape -------------------------------------------------------------------------


def test_settings_are_frozen_and_replace_swaps_sections() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.server.port = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.server = s.server  # type: ignore[misc]
    moved = s.replace(server=s.server.model_copy(update={"port": 9000}))
    assert moved.server.port == 9000 and s.server.port == 8765
    assert moved.realtime == s.realtime and moved.source == s.source


def test_turn_detection_has_one_definition_shared_with_the_protocol() -> None:
    assert not hasattr(foreman.config, "TurnDetectionConfig")
    assert RealtimeConfig().turn_detection == TurnDetection()
    s = settings_from_dict(
        {"realtime": {"turn_detection": {"type": "semantic_vad", "eagerness": "high"}}}
    )
    assert type(s.realtime.turn_detection) is TurnDetection
    assert s.realtime.turn_detection.to_wire() == {
        "type": "semantic_vad",
        "eagerness": "high",
        "create_response": True,
        "interrupt_response": True,
    }
    # The protocol layer stands on its own: importing it never loads the config module.
    code = "import sys, foreman.protocols.realtime; sys.exit('foreman.config' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- [limits] ------------------------------------------------------------------------


def test_the_shipped_limits_are_the_defaults() -> None:
    # The packaged foreman.toml documents every limit with its default value.
    shipped = load_settings(PACKAGED_CONFIG, env={}).limits
    assert shipped == LimitsConfig()
    text = Path(PACKAGED_CONFIG).read_text()
    section = text.split("[limits]", 1)[1]
    for key in LimitsConfig.model_fields:
        assert f"\n{key} = " in section, key


@pytest.mark.parametrize(
    ("doc", "line"),
    [
        (
            "[limits]\napi_max_body_bytes = 10\n",
            "'limits.api_max_body_bytes' must be at least 1024",
        ),
        (
            "[limits]\nwebhook_max_form_fields = 0\n",
            "'limits.webhook_max_form_fields' must be at least 20",
        ),
        ("[limits]\nheader_timeout_s = 0\n", "'limits.header_timeout_s' must be more than 0"),
        ("[limits]\napi_rate_per_s = -1\n", "'limits.api_rate_per_s' must be at least 0"),
        (
            "[limits]\nws_max_message_bytes = 1.5\n",
            "'limits.ws_max_message_bytes' must be an integer",
        ),
        ('[limits]\nmax_connections = "many"\n', "'limits.max_connections' must be an integer"),
        ("[limits]\nmax_body = 5\n", "unknown key 'limits.max_body'"),
    ],
)
def test_a_bad_limit_is_one_line_naming_the_key(tmp_path: Path, doc: str, line: str) -> None:
    f = tmp_path / "limits.toml"
    f.write_text(doc)
    with pytest.raises(ConfigError) as info:
        load_settings(f, env={})
    assert str(info.value).startswith(f"{f}: {line}")
    assert_one_line_of_ours(str(info.value))


def test_the_shipped_recovery_settings_are_the_defaults() -> None:
    shipped = load_settings(PACKAGED_CONFIG, env={}).realtime.recovery
    assert shipped == RecoveryConfig()
    section = Path(PACKAGED_CONFIG).read_text().split("[realtime.recovery]", 1)[1]
    for key in RecoveryConfig.model_fields:
        assert f"\n{key} = " in section, key
    # Safe: recovery is on, the rollover comes before the service's 60-minute limit.
    assert shipped.reconnect and shipped.rollover_after_s < shipped.session_limit_s <= 3600


@pytest.mark.parametrize(
    ("doc", "line"),
    [
        (
            "[realtime.recovery]\nrollover_after_s = 4000.0\n",
            "'realtime.recovery.rollover_after_s' must be less than session_limit_s",
        ),
        (
            "[realtime.recovery]\nbackoff_initial_s = 2.0\nbackoff_max_s = 1.0\n",
            "'realtime.recovery.backoff_max_s' must be at least backoff_initial_s",
        ),
        (
            "[realtime.recovery]\nreconnect_window_s = 0\n",
            "'realtime.recovery.reconnect_window_s' must be more than 0",
        ),
        ("[realtime.recovery]\nnudges = 9\n", "'realtime.recovery.nudges' must be at most 5"),
        ("[realtime.recovery]\nretries = 3\n", "unknown key 'realtime.recovery.retries'"),
    ],
)
def test_recovery_errors_are_one_line_naming_the_key(tmp_path: Path, doc: str, line: str) -> None:
    f = tmp_path / "recovery.toml"
    f.write_text(doc)
    with pytest.raises(ConfigError) as info:
        load_settings(f, env={})
    assert str(info.value).startswith(f"{f}: {line}")
    assert_one_line_of_ours(str(info.value))
