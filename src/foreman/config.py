"""Settings: `config/foreman.toml` (or `$FOREMAN_CONFIG`) plus environment overrides.

Loaded once at start-up and passed down. Every key is checked: an unknown key, a wrong type
or an unknown audio format stops start-up with a `ConfigError` naming the key and the file.
Secrets are held in `Secret`, whose repr never shows the value.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foreman.audio.formats import AudioFormat
from foreman.exceptions import AudioFormatError, ConfigError

DEFAULT_MODEL = "gpt-realtime-2.1"  # gpt-realtime shuts down 2027-01-20 (reference §0)
DEFAULT_ENDPOINT = "wss://api.openai.com/v1/realtime"
DEFAULT_CONFIG_PATH = Path("config/foreman.toml")


class Secret(str):
    """A string that never shows itself in repr, logs or tracebacks."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"

    def reveal(self) -> str:
        return str.__str__(self)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    # Required when `host` is not loopback; clients send `Authorization: Bearer <token>`.
    api_token: Secret = Secret("")
    # On a loopback bind, requests must name this machine in `Host` (and `Origin`, when
    # sent): DNS-rebinding protection. Other names this server is reached by go here.
    allowed_hosts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VoiceConfig:
    wake_phrase: str = "hey vim"


@dataclass(frozen=True)
class TurnDetectionConfig:
    type: str = "server_vad"  # server_vad | semantic_vad | none
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    # Sources disagree on the service default (200 vs 500 ms), so it is always sent.
    silence_duration_ms: int = 500
    idle_timeout_ms: int | None = None
    eagerness: str = "auto"
    create_response: bool = True
    interrupt_response: bool = True


@dataclass(frozen=True)
class RealtimeConfig:
    enabled: bool = True
    model: str = DEFAULT_MODEL
    transport: str = "websocket"  # websocket | webrtc (webrtc arrives with its own issue)
    endpoint: str = DEFAULT_ENDPOINT
    api_key: Secret = Secret("")  # from OPENAI_API_KEY; keeping it out of the file is advised
    # The only hosts the key is ever sent to (over wss://, or ws:// on this machine). An
    # endpoint named in a start request that is not listed here gets no key.
    api_key_hosts: list[str] = field(default_factory=lambda: ["api.openai.com"])
    audio_in_hz: int = 24000  # rate of PCM16 pushed into an API-started session
    audio_out_format: str = "pcm16"  # the model's audio format, both directions
    voice: str = "marin"
    instructions: str = (
        "You are Foreman, a concise and friendly voice assistant. Keep answers short. "
        "Never say an action is done until its tool result says so."
    )
    output_modalities: list[str] = field(default_factory=lambda: ["audio"])
    transcription_model: str = "gpt-live-transcribe"  # "" turns input transcription off
    transcription_language: str = ""
    noise_reduction: str = ""  # "" | near_field | far_field
    connect_timeout_s: float = 10.0
    turn_detection: TurnDetectionConfig = field(default_factory=TurnDetectionConfig)


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str = ""
    auth_token: Secret = Secret("")
    public_url: str = ""  # e.g. https://voice.example.com (what Twilio signs)
    from_number: str = ""  # caller id for outbound calls and SMS
    validate_signatures: bool = True  # false only for local development (loud warning)
    api_base: str = "https://api.twilio.com"
    model_audio: str = "g711_ulaw"  # g711_ulaw = passthrough; pcm16 = decode + resample
    stream_token_ttl_s: float = 60.0
    max_lead_ms: int = 400  # how far outbound audio may run ahead of real time


@dataclass(frozen=True)
class IdentityConfig:
    owner_name: str = "Godfather"
    owner_numbers: list[str] = field(default_factory=list)
    contacts: dict[str, str] = field(default_factory=dict)  # name -> E.164 number


@dataclass(frozen=True)
class ToolsConfig:
    dir: str = "config/tools.d"  # relative to the config file when one is loaded
    default_timeout_s: float = 10.0
    still_running_after_s: float = 3.0  # tell the model a slow tool is still running


@dataclass(frozen=True)
class PolicyConfig:
    approval_timeout_s: float = 120.0
    # Rules are validated by foreman.policy.rules when the gatekeeper is built.
    rules: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class EmailConfig:
    host: str = ""
    port: int = 587
    username: str = ""
    password: Secret = Secret("")
    from_addr: str = ""
    starttls: bool = True
    use_tls: bool = False  # implicit TLS (port 465)
    timeout_s: float = 15.0
    ca_file: str = ""  # extra CA bundle (tests use a self-signed server)


@dataclass(frozen=True)
class CalendarConfig:
    caldav_url: str = ""  # empty: use the local .ics file
    username: str = ""
    password: Secret = Secret("")
    calendar_name: str = ""
    ics_path: str = "~/.local/share/foreman/calendar.ics"


@dataclass(frozen=True)
class StorageConfig:
    db_path: str = "~/.local/share/foreman/foreman.db"


@dataclass(frozen=True)
class Settings:
    server: ServerConfig = field(default_factory=ServerConfig)
    voice: VoiceConfig = field(default_factory=VoiceConfig)
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)
    twilio: TwilioConfig = field(default_factory=TwilioConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    calendar: CalendarConfig = field(default_factory=CalendarConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    source: str = "<defaults>"  # the file the settings came from, for error messages

    def replace(self, **sections: Any) -> Settings:
        return dataclasses.replace(self, **sections)


# --- loading -------------------------------------------------------------------------

_TOP_LEVEL = {f.name for f in dataclasses.fields(Settings) if f.name != "source"}


def load_settings(
    path: str | os.PathLike[str] | None = None, env: typing.Mapping[str, str] | None = None
) -> Settings:
    """Load the file (if it exists), apply env overrides, validate. Raises ConfigError."""
    env = os.environ if env is None else env
    explicit = path is not None or "FOREMAN_CONFIG" in env
    file = Path(path if path is not None else env.get("FOREMAN_CONFIG", DEFAULT_CONFIG_PATH))
    data: dict[str, Any] = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    elif explicit:
        raise ConfigError(f"{file}: config file not found")
    settings = settings_from_dict(data, source=str(file) if file.exists() else "<defaults>")
    if file.exists() and not Path(settings.tools.dir).expanduser().is_absolute():
        # A relative tools directory belongs to the config file, not to the working directory.
        tools = dataclasses.replace(settings.tools, dir=str(file.parent / settings.tools.dir))
        settings = settings.replace(tools=tools)
    return apply_env(settings, env)


def settings_from_dict(data: dict[str, Any], source: str = "<dict>") -> Settings:
    for key in data:
        if key not in _TOP_LEVEL:
            raise ConfigError(
                f"{source}: unknown section [{key}] (valid: {', '.join(sorted(_TOP_LEVEL))})"
            )
    sections = {}
    hints = typing.get_type_hints(Settings)
    for name in _TOP_LEVEL:
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        sections[name] = _build(hints[name], raw, name, source)
    settings = Settings(**sections, source=source)
    _check_semantics(settings)
    return settings


def apply_env(settings: Settings, env: typing.Mapping[str, str]) -> Settings:
    rt = settings.realtime
    changes: dict[str, Any] = {}
    if env.get("OPENAI_API_KEY"):
        changes["api_key"] = Secret(env["OPENAI_API_KEY"])
    if env.get("OPENAI_REALTIME_MODEL"):
        changes["model"] = env["OPENAI_REALTIME_MODEL"]
    if env.get("OPENAI_REALTIME_ENDPOINT"):
        changes["endpoint"] = env["OPENAI_REALTIME_ENDPOINT"]
    if changes:
        settings = settings.replace(realtime=dataclasses.replace(rt, **changes))
    tw: dict[str, Any] = {}
    if env.get("TWILIO_ACCOUNT_SID"):
        tw["account_sid"] = env["TWILIO_ACCOUNT_SID"]
    if env.get("TWILIO_AUTH_TOKEN"):
        tw["auth_token"] = Secret(env["TWILIO_AUTH_TOKEN"])
    if tw:
        settings = settings.replace(twilio=dataclasses.replace(settings.twilio, **tw))
    if env.get("FOREMAN_API_TOKEN"):
        settings = settings.replace(
            server=dataclasses.replace(settings.server, api_token=Secret(env["FOREMAN_API_TOKEN"]))
        )
    if env.get("FOREMAN_DB"):
        settings = settings.replace(storage=StorageConfig(db_path=env["FOREMAN_DB"]))
    _check_semantics(settings)
    return settings


def _build(cls: Any, raw: dict[str, Any], where: str, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            raise ConfigError(
                f"{source}: unknown key '{where}.{key}' (valid: {', '.join(sorted(names))})"
            )
        kwargs[key] = _coerce(hints[key], value, f"{where}.{key}", source)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a table")
        return _build(tp, value, key, source)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(args[0], value, key, source)
    if tp is Secret:
        return Secret(_coerce(str, value, key, source))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: '{key}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: '{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: '{key}' must be a string, got {value!r}")
        return value
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{source}: '{key}' must be a list")
        return [_coerce(item, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        _, vt = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a table")
        return {str(k): _coerce(vt, v, f"{key}.{k}", source) for k, v in value.items()}
    if tp is Any:
        return value
    raise ConfigError(f"{source}: '{key}' has an unsupported type")  # pragma: no cover


def _check_semantics(s: Settings) -> None:
    src = s.source
    rt = s.realtime
    try:
        AudioFormat.from_name(rt.audio_out_format)
    except AudioFormatError as exc:
        raise ConfigError(f"{src}: 'realtime.audio_out_format': {exc}") from None
    try:
        AudioFormat.from_name(s.twilio.model_audio)
    except AudioFormatError as exc:
        raise ConfigError(f"{src}: 'twilio.model_audio': {exc}") from None
    if rt.audio_in_hz not in (8000, 16000, 24000, 48000):
        raise ConfigError(f"{src}: 'realtime.audio_in_hz' must be 8000, 16000, 24000 or 48000")
    if rt.transport not in ("websocket", "webrtc"):
        raise ConfigError(f"{src}: 'realtime.transport' must be 'websocket' or 'webrtc'")
    if not rt.endpoint.startswith(("ws://", "wss://")):
        raise ConfigError(f"{src}: 'realtime.endpoint' must be a ws:// or wss:// URL")
    if rt.turn_detection.type not in ("server_vad", "semantic_vad", "none"):
        raise ConfigError(
            f"{src}: 'realtime.turn_detection.type' must be server_vad, semantic_vad or none"
        )
    if rt.turn_detection.eagerness not in ("low", "medium", "high", "auto"):
        raise ConfigError(
            f"{src}: 'realtime.turn_detection.eagerness' must be low, medium, high or auto"
        )
    if rt.output_modalities not in (["audio"], ["text"]):
        raise ConfigError(f'{src}: \'realtime.output_modalities\' must be ["audio"] or ["text"]')
    if rt.noise_reduction not in ("", "near_field", "far_field"):
        raise ConfigError(
            f"{src}: 'realtime.noise_reduction' must be near_field, far_field or empty"
        )
    if not 0 < s.server.port < 65536:
        raise ConfigError(f"{src}: 'server.port' must be between 1 and 65535")
    if s.policy.approval_timeout_s <= 0:
        raise ConfigError(f"{src}: 'policy.approval_timeout_s' must be positive")


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")
