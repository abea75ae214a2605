"""Settings: one TOML file plus a fixed set of environment overrides.

The file is the first of: `--config FILE` or `$FOREMAN_CONFIG` (named on purpose: it must
exist), `./config/foreman.toml` in the working directory, the user's
`~/.config/foreman/foreman.toml` (`$XDG_CONFIG_HOME/foreman/`), and the defaults shipped in
the package (`foreman/defaults/`, with their `tools.d`). `settings.source` says which.

Loaded once at start-up and passed down. Each section is a frozen pydantic model that forbids
unknown keys and never converts types (`port = "80"` is an error, not port 80). Any problem
stops start-up with a one-line `ConfigError` naming the dotted key and the file, or the
environment variable that caused it. Secrets are `pydantic.SecretStr`: repr and errors never
show them; `.get_secret_value()` gives the value to the one place that needs it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from foreman.config_errors import first_problem, unknown_key_line
from foreman.config_sections import (
    DEFAULT_CHAT_BASE_URL,
    DEFAULT_CHAT_MODEL,
    DEFAULT_ENDPOINT,
    DEFAULT_LIVE_BACKEND_MODEL,
    DEFAULT_LIVE_ENDPOINT,
    DEFAULT_LIVE_MODEL,
    DEFAULT_MODEL,
    PACKAGED_DEFAULTS,
    PACKAGED_TOOLS_DIR,
    AudioConfig,
    CalendarConfig,
    ChatConfig,
    DeviceChoice,
    EmailConfig,
    HistoryConfig,
    IdentityConfig,
    LimitsConfig,
    LiveConfig,
    LocalConfig,
    PolicyConfig,
    Port,
    RealtimeConfig,
    RecoveryConfig,
    Seconds,
    ServerConfig,
    StorageConfig,
    ToolsConfig,
    TwilioConfig,
    VoiceConfig,
    WakeDetector,
)
from foreman.exceptions import ConfigError

# What the package ships: the documented default config and the default tool specs. Used
# when no config file is found; `foreman init` copies them somewhere editable.
# The sections are defined in foreman.config_sections and are part of this module too.
__all__ = [
    "CONFIG_FILE_NAME",
    "DEFAULT_CHAT_BASE_URL",
    "DEFAULT_CHAT_MODEL",
    "DEFAULT_ENDPOINT",
    "DEFAULT_LIVE_BACKEND_MODEL",
    "DEFAULT_LIVE_ENDPOINT",
    "DEFAULT_LIVE_MODEL",
    "DEFAULT_MODEL",
    "ENV_OVERRIDES",
    "PACKAGED_CONFIG",
    "PACKAGED_DEFAULTS",
    "PACKAGED_SOURCE",
    "PACKAGED_TOOLS_DIR",
    "PROJECT_CONFIG_PATH",
    "AudioConfig",
    "CalendarConfig",
    "ChatConfig",
    "DeviceChoice",
    "EmailConfig",
    "EnvOverrides",
    "HistoryConfig",
    "IdentityConfig",
    "LimitsConfig",
    "LiveConfig",
    "LocalConfig",
    "PolicyConfig",
    "Port",
    "RealtimeConfig",
    "RecoveryConfig",
    "Seconds",
    "ServerConfig",
    "Settings",
    "StorageConfig",
    "ToolsConfig",
    "TwilioConfig",
    "VoiceConfig",
    "VoiceTarget",
    "WakeDetector",
    "apply_env",
    "find_config_file",
    "is_loopback",
    "load_settings",
    "local_chat_selected",
    "local_engine_selected",
    "realtime_refusal",
    "settings_from_dict",
    "user_config_dir",
    "voice_target",
]

PACKAGED_CONFIG = PACKAGED_DEFAULTS / "foreman.toml"
PACKAGED_SOURCE = "<packaged defaults>"
CONFIG_FILE_NAME = "foreman.toml"
PROJECT_CONFIG_PATH = Path("config") / CONFIG_FILE_NAME  # relative to the working directory

# The only environment variables that change settings, and the key each one sets. Nothing
# else in the environment is read: a stray variable never changes a setting silently.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "OPENAI_API_KEY": ("realtime", "api_key"),
    "OPENAI_REALTIME_MODEL": ("realtime", "model"),
    "OPENAI_REALTIME_ENDPOINT": ("realtime", "endpoint"),
    "TWILIO_ACCOUNT_SID": ("twilio", "account_sid"),
    "TWILIO_AUTH_TOKEN": ("twilio", "auth_token"),
    "FOREMAN_API_TOKEN": ("server", "api_token"),
    "FOREMAN_DB": ("storage", "db_path"),
}


class Settings(BaseSettings):
    """All settings. Build with `load_settings` (file + environment) or `settings_from_dict`.

    `Settings()` gives the defaults: it reads neither a file nor the environment.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        hide_input_in_errors=True,
        case_sensitive=True,  # `[Server]` is an unknown section, not `[server]`
    )

    server: ServerConfig = Field(default_factory=ServerConfig)
    voice: VoiceConfig = Field(default_factory=VoiceConfig)
    audio: AudioConfig = Field(default_factory=AudioConfig)
    realtime: RealtimeConfig = Field(default_factory=RealtimeConfig)
    live: LiveConfig = Field(default_factory=LiveConfig)
    twilio: TwilioConfig = Field(default_factory=TwilioConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    tools: ToolsConfig = Field(default_factory=ToolsConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    chat: ChatConfig = Field(default_factory=ChatConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    local: LocalConfig = Field(default_factory=LocalConfig)
    source: str = "<defaults>"  # the file the settings came from, for error messages

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the constructor's arguments. pydantic-settings' own environment mapping would
        # let any variable named like a field change it; `load_settings` applies the file and
        # ENV_OVERRIDES explicitly, so each problem can be blamed on its origin.
        return (init_settings,)

    def replace(self, **sections: Any) -> Settings:
        """A copy with whole sections swapped (not validated: pass built section models)."""
        return self.model_copy(update=sections)


class EnvOverrides(PydanticBaseSettingsSource):
    """The ENV_OVERRIDES variables that are set and non-empty, as `{section: {key: value}}`."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        keys = {
            key: self._env[variable]
            for variable, (section, key) in ENV_OVERRIDES.items()
            if section == field_name and self._env.get(variable)
        }
        return keys or None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(info, name)
            if value is not None:
                found[key] = value
        return found


# --- loading -------------------------------------------------------------------------


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Find the config file, load it, apply env overrides, validate. Raises ConfigError.

    The file is `path`, else `$FOREMAN_CONFIG` (either must exist), else the first of
    `./config/foreman.toml` and the user's `foreman.toml` that exists, else the packaged
    defaults (`source` is then "<packaged defaults>"). A relative `[tools] dir` is taken
    relative to the file it is written in.
    """
    env = os.environ if env is None else env
    file = find_config_file(path, env)
    if file is None:
        settings = _load_file(PACKAGED_CONFIG, source=PACKAGED_SOURCE)
    else:
        settings = _load_file(file, source=str(file))
    return apply_env(settings, env)


def find_config_file(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Path | None:
    """The config file `load_settings` would read, or None for the packaged defaults.
    Raises ConfigError when the file named by `path` or `$FOREMAN_CONFIG` does not exist."""
    env = os.environ if env is None else env
    named = path if path is not None else env.get("FOREMAN_CONFIG") or None
    if named is not None:
        file = Path(named)
        if not file.exists():
            raise ConfigError(f"{file}: config file not found")
        return file
    for candidate in (PROJECT_CONFIG_PATH, user_config_dir(env) / CONFIG_FILE_NAME):
        if candidate.exists():
            return candidate
    return None


def user_config_dir(env: Mapping[str, str] | None = None) -> Path:
    """The user's config folder: `$XDG_CONFIG_HOME/foreman`, else `~/.config/foreman`.

    A relative XDG_CONFIG_HOME is ignored, as the XDG Base Directory specification asks:
    https://specifications.freedesktop.org/basedir-spec/latest/
    """
    env = os.environ if env is None else env
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "foreman"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".config" / "foreman"


def _load_file(file: Path, *, source: str) -> Settings:
    settings = settings_from_dict(_read_toml(file), source=source)
    if not Path(settings.tools.dir).expanduser().is_absolute():
        # A relative tools directory belongs to the config file, not to the working directory.
        tools = settings.tools.model_copy(update={"dir": str(file.parent / settings.tools.dir)})
        settings = settings.replace(tools=tools)
    return settings


def _read_toml(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise ConfigError(f"{file}: not a file")
    try:
        return TomlConfigSettingsSource(Settings, toml_file=file)()
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None


def settings_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Settings:
    """Validate a parsed config file. Raises ConfigError naming `source` and the key."""
    if "source" in data:  # a field of Settings, but not something a file may set
        raise ConfigError(f"{source}: {unknown_key_line(('source',), Settings)}")
    try:
        return Settings.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise ConfigError(f"{source}: {first_problem(exc, Settings).line}") from None


def apply_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    """`settings` with the ENV_OVERRIDES that `env` sets, and the chat key from the variable
    `[chat] api_key_env` names. A bad value names its variable."""
    settings = _with_chat_key(settings, env)
    overrides = EnvOverrides(Settings, env)()
    if not overrides:
        return settings
    data = settings.model_dump()
    for section, values in overrides.items():
        data[section] = {**data[section], **values}
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problem = first_problem(exc, Settings)
        for variable, where in ENV_OVERRIDES.items():
            if where == problem.loc[:2] and env.get(variable):
                raise ConfigError(f"environment variable {variable}: {problem.detail}") from None
        raise ConfigError(f"{settings.source}: {problem.line}") from None


def _with_chat_key(settings: Settings, env: Mapping[str, str]) -> Settings:
    """The chat key comes from the variable the config names (OPENAI_API_KEY by default):
    a local server needs none, another provider has a key of its own."""
    key = env.get(settings.chat.api_key_env, "")
    if not key:
        return settings
    chat = settings.chat.model_copy(update={"api_key": SecretStr(key)})
    return settings.replace(chat=chat)


def realtime_refusal(settings: Settings) -> str | None:
    """Why a realtime session (voice or phone) must not start, or None when it may."""
    if settings.realtime.enabled:
        return None
    return f"realtime sessions are turned off ('realtime.enabled' is false in {settings.source})"


@dataclass(frozen=True, slots=True)
class VoiceTarget:
    """Where voice sessions go: the API `[realtime] api` chose, and its model, endpoint and
    voice (from `[realtime]` or `[live]`)."""

    api: Literal["realtime", "live"]
    model: str
    endpoint: str
    voice: str

    @property
    def mock_path(self) -> str:
        """The path `foreman mock-realtime` serves this API at (for hints)."""
        return "/v1/live/sessions" if self.api == "live" else "/v1/realtime"


def voice_target(settings: Settings) -> VoiceTarget:
    rt = settings.realtime
    if rt.api == "live":
        live = settings.live
        return VoiceTarget("live", live.model, live.endpoint, live.voice)
    return VoiceTarget("realtime", rt.model, rt.endpoint, rt.voice)


def local_engine_selected(settings: Settings) -> bool:
    """Whether voice sessions and phone calls run on the offline engine: `[local] use`
    "always", or "auto" and no key for an endpoint that needs one."""
    use = settings.local.use
    if use != "auto":
        return use == "always"
    from urllib.parse import urlsplit

    host = urlsplit(voice_target(settings).endpoint).hostname or ""
    needs_key = host == "api.openai.com" or host.endswith(".openai.com")  # not a mock or proxy
    return needs_key and not settings.realtime.api_key.get_secret_value()


def local_chat_selected(settings: Settings) -> bool:
    """Whether text chat uses the in-process local model: the offline engine is not turned
    off, chat is on, and `[chat]` points at the default OpenAI URL with no key to send."""
    chat = settings.chat
    return (
        settings.local.use != "never"
        and chat.enabled
        and chat.base_url == DEFAULT_CHAT_BASE_URL
        and not chat.api_key.get_secret_value()
    )


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")
