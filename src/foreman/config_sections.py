"""The sections of the settings file: one frozen pydantic model each, with its defaults and
its checks (`foreman.config` loads the file and puts them together in `Settings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)

from foreman.audio.formats import AudioFormatName
from foreman.protocols.realtime.endpoint import endpoint_problem
from foreman.protocols.realtime.session_config import (
    NoiseReduction,
    OutputModality,
    TurnDetection,
)

PACKAGED_DEFAULTS = Path(__file__).resolve().parent / "defaults"
PACKAGED_TOOLS_DIR = PACKAGED_DEFAULTS / "tools.d"

DEFAULT_MODEL = "gpt-realtime-2.1"  # gpt-realtime shuts down 2027-01-20
DEFAULT_ENDPOINT = "wss://api.openai.com/v1/realtime"
DEFAULT_LIVE_MODEL = "gpt-live-1"
DEFAULT_LIVE_ENDPOINT = "wss://api.openai.com/v1/live/sessions"
DEFAULT_LIVE_BACKEND_MODEL = "gpt-6-luna"

DEFAULT_CHAT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_CHAT_MODEL = "gpt-5-mini"


# Every section (and Settings): immutable, no unknown keys, no type conversion, and pydantic's
# own error text (should one ever escape) without the input in it.
_MODEL_CONFIG = ConfigDict(
    frozen=True, extra="forbid", strict=True, allow_inf_nan=False, hide_input_in_errors=True
)

Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = _MODEL_CONFIG


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: Port = 8765
    # Required when `host` is not loopback; clients send `Authorization: Bearer <token>`.
    api_token: SecretStr = SecretStr("")
    # On a loopback bind, requests must name this machine in `Host` (and `Origin`, when
    # sent): DNS-rebinding protection. Other names this server is reached by go here.
    allowed_hosts: list[str] = Field(default_factory=list)


WakeDetector = Literal["auto", "openai", "ensemble", "whisper", "pocketsphinx"]
DeviceChoice = Annotated[int, Field(ge=0)] | str  # an index, a name (part of one), "" = default


class VoiceConfig(_Section):
    """The desk assistant's voice mode and its wake sentinel."""

    wake_phrase: str = Field(default="hey vim", min_length=2, max_length=60)
    wake_enabled: bool = True  # listen for the phrase when a microphone is there
    # auto: OpenAI transcription when a key is set, else the best offline recogniser installed
    # (ensemble: whisper + pocketsphinx, else whisper, else pocketsphinx); or name one.
    wake_detector: WakeDetector = "auto"
    wake_cooldown_s: float = Field(default=2.0, ge=0, le=60)  # after a wake-up, and after voice
    wake_pre_roll_ms: int = Field(default=300, ge=0, le=2000)  # audio kept before speech starts
    wake_max_segment_s: float = Field(default=6.0, gt=0.5, le=30)  # longer speech is cut here
    transcription_model: str = Field(default="gpt-transcribe", min_length=1)
    transcription_base_url: str = "https://api.openai.com/v1"  # the key goes only to api_key_hosts
    transcription_timeout_s: Seconds = 10.0
    idle_timeout_s: float = Field(default=30.0, ge=0)  # silence in voice mode: back to text; 0 off

    @field_validator("transcription_base_url")
    @classmethod
    def _http_url(cls, base_url: str) -> str:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return base_url.rstrip("/")


class AudioConfig(_Section):
    """The desk microphone and speaker (`foreman[audio]`, on PortAudio)."""

    enabled: bool = True  # use them when PortAudio and a device are there; false: never
    input_device: DeviceChoice = ""  # `foreman devices` lists them
    output_device: DeviceChoice = ""
    block_ms: int = Field(default=20, ge=5, le=100)  # one device callback
    jitter_target_ms: int = Field(default=60, ge=0, le=1000)  # buffered before playback starts
    jitter_max_ms: int = Field(default=4000, ge=100, le=60000)  # model audio waiting to play
    # Half duplex: while the assistant speaks, the microphone counts as the user (a barge-in)
    # only this many dB above the echo expected from the speaker (foreman.audio.echo_gate).
    echo_guard_db: float = Field(default=6.0, ge=0, le=60)


class RecoveryConfig(_Section):
    """`[realtime.recovery]`: what a live session does when the model goes away or stops
    answering, and how it moves to a new session before the service's time limit."""

    reconnect: bool = True  # false: a dropped model socket ends the call (with its reason)
    reconnect_window_s: Seconds = 20.0  # the whole outage a call sits through, then goodbye
    backoff_initial_s: Seconds = 0.25  # ceiling of the first waits; doubles per attempt ...
    backoff_max_s: Seconds = 4.0  # ... up to this (full jitter: a uniform draw below it)
    buffer_audio_s: Seconds = 10.0  # the user's audio kept while disconnected (oldest dropped)
    replay_max_items: int = Field(default=200, ge=1, le=5000)  # conversation items restored
    session_limit_s: Seconds = 3600.0  # the service ends a session after this long
    rollover_after_s: Seconds = 3300.0  # then, at the first pause, move to a fresh session
    response_timeout_s: Seconds = 10.0  # a committed user turn with no reply started
    stall_timeout_s: Seconds = 8.0  # a reply with no event at all for this long
    nudges: int = Field(default=1, ge=0, le=5)  # cancel + ask again before reconnecting
    ping_interval_s: Seconds = 10.0  # WebSocket keepalive: a socket with no pong ...
    ping_timeout_s: Seconds = 10.0  # ... within this is dead, and is reconnected

    @field_validator("backoff_max_s")
    @classmethod
    def _backoff_ordered(cls, value: float, info: ValidationInfo) -> float:
        if value < info.data.get("backoff_initial_s", 0.0):
            raise ValueError("must be at least backoff_initial_s")
        return value

    @field_validator("rollover_after_s")
    @classmethod
    def _rollover_first(cls, value: float, info: ValidationInfo) -> float:
        if value >= info.data.get("session_limit_s", float("inf")):
            raise ValueError("must be less than session_limit_s")
        return value


class RealtimeConfig(_Section):
    enabled: bool = True  # false refuses realtime voice sessions and phone calls
    # Which OpenAI voice API runs sessions: "realtime" (this section) or "live" (GPT-Live,
    # its own settings in [live]; the key, its hosts, instructions and formats stay here).
    api: Literal["realtime", "live"] = "realtime"
    model: str = Field(default=DEFAULT_MODEL, min_length=1)
    transport: Literal["websocket", "webrtc"] = "websocket"  # webrtc is not implemented yet
    endpoint: str = DEFAULT_ENDPOINT
    api_key: SecretStr = SecretStr("")  # from OPENAI_API_KEY; keeping it out of the file is advised
    # The only hosts the key is ever sent to (over wss://, or ws:// on this machine). An
    # endpoint named in a start request that is not listed here gets no key.
    api_key_hosts: list[str] = Field(default_factory=lambda: ["api.openai.com"])
    audio_in_hz: Literal[8000, 16000, 24000, 48000] = 24000  # PCM16 pushed into API sessions
    audio_out_format: AudioFormatName = "pcm16"  # the model's audio format, both directions
    voice: str = "marin"
    instructions: str = (
        "You are Foreman, a concise and friendly voice assistant. Keep answers short. "
        "Never say an action is done until its tool result says so."
    )
    output_modalities: list[OutputModality] = Field(
        default_factory=lambda: list[OutputModality](["audio"]), min_length=1, max_length=1
    )
    transcription_model: str = "gpt-live-transcribe"  # "" turns input transcription off
    transcription_language: str = ""
    noise_reduction: NoiseReduction = ""
    connect_timeout_s: Seconds = 10.0
    turn_detection: TurnDetection = Field(default_factory=TurnDetection)
    recovery: RecoveryConfig = Field(default_factory=RecoveryConfig)

    @field_validator("endpoint")
    @classmethod
    def _websocket_url(cls, endpoint: str) -> str:
        problem = endpoint_problem(endpoint)
        if problem is not None:
            raise ValueError(problem)
        return endpoint


class LiveConfig(_Section):
    """GPT-Live: one continuous full-duplex session; tools run on a delegated Responses
    model (`backend_model`), never on the voice model."""

    model: str = Field(default=DEFAULT_LIVE_MODEL, min_length=1)
    endpoint: str = DEFAULT_LIVE_ENDPOINT
    voice: str = "marin"
    backend_model: str = Field(default=DEFAULT_LIVE_BACKEND_MODEL, min_length=1)
    backend_instructions: str = (
        "You carry out the tasks the voice assistant delegates, with the tools given. "
        "Never say an action is done until its tool result says so; when a result says it "
        "is waiting for approval or was denied, say exactly that."
    )
    parallel_tool_calls: bool = False
    acknowledgement_delay_ms: int = Field(default=0, ge=0)
    # A session expires at the `expires_at` its start names; this long before, a standby
    # session is opened and takes over at the first pause. Reconnecting after a lost socket
    # follows [realtime.recovery].
    rollover_margin_s: Seconds = 60.0

    @field_validator("endpoint")
    @classmethod
    def _websocket_url(cls, endpoint: str) -> str:
        problem = endpoint_problem(endpoint)
        if problem is not None:
            raise ValueError(problem)
        return endpoint


class TwilioConfig(_Section):
    account_sid: str = ""
    auth_token: SecretStr = SecretStr("")
    public_url: str = ""  # e.g. https://voice.example.com (what Twilio signs)
    from_number: str = ""  # caller id for outbound calls and SMS
    validate_signatures: bool = True  # false only for local development (loud warning)
    api_base: str = "https://api.twilio.com"
    model_audio: AudioFormatName = "g711_ulaw"  # g711_ulaw = passthrough; pcm16 = decode + resample
    stream_token_ttl_s: Seconds = 60.0
    # How far outbound audio may run ahead of real time; at least one 20 ms media frame.
    max_lead_ms: int = Field(default=400, ge=20)


class IdentityConfig(_Section):
    owner_name: str = "Godfather"
    owner_numbers: list[str] = Field(default_factory=list)
    contacts: dict[str, str] = Field(default_factory=dict)  # name -> E.164 number


class ToolsConfig(_Section):
    # Relative to the config file it is written in; by default the tools shipped with Foreman.
    dir: str = str(PACKAGED_TOOLS_DIR)
    default_timeout_s: Seconds = 10.0
    # Tell the model a slow tool is still running after this long.
    still_running_after_s: float = Field(default=3.0, ge=0)


class PolicyConfig(_Section):
    approval_timeout_s: Seconds = 120.0
    # Rules are validated by foreman.policy.rules when the gatekeeper is built.
    rules: list[dict[str, Any]] = Field(default_factory=list)


class EmailConfig(_Section):
    host: str = ""
    port: Port = 587
    username: str = ""
    password: SecretStr = SecretStr("")
    from_addr: str = ""
    starttls: bool = True
    use_tls: bool = False  # implicit TLS (port 465)
    timeout_s: Seconds = 15.0
    ca_file: str = ""  # extra CA bundle (tests use a self-signed server)


class CalendarConfig(_Section):
    caldav_url: str = ""  # empty: use the local .ics file
    username: str = ""
    password: SecretStr = SecretStr("")
    calendar_name: str = ""
    ics_path: str = "~/.local/share/foreman/calendar.ics"


class StorageConfig(_Section):
    db_path: str = "~/.local/share/foreman/foreman.db"
    # How often the server notes that it is alive: after a crash, what was live is recorded
    # as interrupted at the last note.
    heartbeat_s: Seconds = 5.0


class LimitsConfig(_Section):
    """What one client, one socket and one call may cost the server. Every limit refuses
    early with a one-line reason (config/foreman.toml says what happens at each)."""

    # HTTP bodies, counted as they arrive (413 beyond; a Content-Length above is refused
    # before anything is read).
    api_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    webhook_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    webhook_max_form_fields: int = Field(default=200, ge=20)
    # Slow clients: headers, then the whole body, must arrive within these; an idle
    # kept-alive connection is closed after the last.
    header_timeout_s: Seconds = 10.0
    body_timeout_s: Seconds = 30.0
    keep_alive_timeout_s: Seconds = 5.0
    max_connections: int = Field(default=1000, ge=1)  # 503 beyond
    # Token buckets per client address (429 with Retry-After); a rate of 0 turns one off.
    webhook_rate_per_s: float = Field(default=10.0, ge=0)
    webhook_burst: int = Field(default=50, ge=1)
    api_rate_per_s: float = Field(default=50.0, ge=0)
    api_burst: int = Field(default=200, ge=1)
    rate_limit_clients: int = Field(default=10_000, ge=1)  # addresses remembered at once
    # One WebSocket message (the Twilio media socket's are about 1 KB); closed with 1009.
    ws_max_message_bytes: int = Field(default=64 * 1024, ge=4096)
    # Per call.
    call_max_queued_audio_s: Seconds = 180.0
    call_max_tool_calls: int = Field(default=8, ge=1)
    # At shutdown (SIGTERM, Ctrl-C): how long live calls may go on to end by themselves
    # before each hears a short goodbye and is hung up.
    shutdown_grace_s: float = Field(default=5.0, ge=0)
    turn_max_pending_events: int = Field(default=4096, ge=16)
    model_max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024 * 1024)


class ChatConfig(_Section):
    """The text chat model: any server that speaks the OpenAI Chat Completions format."""

    enabled: bool = True  # false refuses chat turns; voice summaries fall back to a digest
    base_url: str = DEFAULT_CHAT_BASE_URL  # e.g. http://127.0.0.1:11434/v1 (a local server)
    model: str = Field(default=DEFAULT_CHAT_MODEL, min_length=1)
    # The variable the key is read from (a local server needs none). The key is sent only
    # to `api_key_hosts`, over https:// unless the host is this machine.
    api_key_env: str = Field(default="OPENAI_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    api_key: SecretStr = SecretStr("")  # from $api_key_env; keeping it out of the file is advised
    api_key_hosts: list[str] = Field(default_factory=lambda: ["api.openai.com"])
    instructions: str = (
        "You are Foreman, a concise and friendly assistant. The conversation may have "
        "continued by voice; summaries of voice sessions appear as system notes. Never say "
        "an action is done until its tool result says so."
    )
    timeout_s: Seconds = 60.0
    max_tool_rounds: int = Field(default=8, ge=1, le=50)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, base_url: str) -> str:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return base_url


class LocalConfig(_Section):
    """The offline voice engine: VAD, Whisper (or pocketsphinx) speech to text, a local LLM,
    espeak-ng/flite.

    `use`: "auto" runs it for voice sessions and phone calls when no OpenAI key is set (and
    gives text chat the same local model when `[chat]` has no key and its default URL);
    "always" runs it even with a key; "never" keeps the cloud backend. The LLM is the chat
    model when `[chat]` can reach one (a local server at `base_url`, or OpenAI with a key),
    else `llm`: a packaged model name, or the path of a GGUF file, run in-process.
    """

    use: Literal["auto", "always", "never"] = "auto"
    # Speech to text: Whisper (faster-whisper, the packaged base model), or pocketsphinx (CMU,
    # its wheel's English model: lighter, much less accurate; the 'wake' extra installs it).
    stt: Literal["whisper", "pocketsphinx"] = "whisper"
    stt_model_dir: str = ""  # a faster-whisper model directory; "" = the packaged Whisper base
    stt_threads: int = Field(default=2, ge=1, le=64)
    stt_beam_size: int = Field(default=1, ge=1, le=10)  # 1 is greedy: fastest
    stt_prompt: str = ""  # words the callers use (names), to bias the transcription
    # Decode a short utterance on a window fitted to it, not Whisper's whole 30 s: about a
    # third of the CPU for the same words (docs/benchmarks.md).
    stt_fitted_window: bool = True
    llm: str = Field(default="qwen2.5-coder-0.5b", min_length=1)
    llm_threads: int = Field(default=2, ge=1, le=64)
    llm_context: int = Field(default=8192, ge=512, le=131072)  # shared by the parallel slots
    llm_parallel: int = Field(default=2, ge=1, le=64)  # requests served at once
    llm_max_tokens: int = Field(default=256, ge=16, le=8192)
    # At a session's start, have the model read its system prompt and tools once (a
    # one-token answer) so the first turn reuses llama.cpp's prompt cache.
    warm_prompt: bool = True
    # Tell the model the date and time before each answer (a small model seldom calls
    # get_time and makes the time up instead).
    clock_note: bool = True
    # auto: espeak-ng, else flite. piper: the better voice, an optional extra (GPL-3.0).
    tts: Literal["auto", "espeak-ng", "flite", "piper"] = "auto"
    tts_voice: str = Field(default="", pattern=r"^[A-Za-z0-9_+.-]{0,40}$")  # "" = en-us/slt/joe
    tts_speed: int = Field(default=170, ge=80, le=450)  # words per minute (espeak-ng's scale)
    vad_threshold: float = Field(default=0.5, gt=0, lt=1)
    end_of_speech_ms: int = Field(default=500, ge=100, le=3000)  # silence that ends a turn
    # Start speech to text this far into a pause, before it is long enough to end the turn
    # (the text is dropped if the caller goes on): 0 waits for the end of the turn.
    early_transcribe_ms: int = Field(default=150, ge=0, le=3000)
    max_utterance_s: Seconds = 30.0


class HistoryConfig(_Section):
    """What a session is given of the conversation so far (tokens are estimated)."""

    seed_turns: int = Field(default=20, ge=0, le=1000)  # a voice session starts with these
    seed_tokens: int = Field(default=1500, ge=0)
    context_turns: int = Field(default=60, ge=1, le=5000)  # a chat turn sees these
    context_tokens: int = Field(default=8000, ge=100)
    summary: Literal["model", "digest"] = "model"  # model: the chat model, digest if it fails
    summary_timeout_s: Seconds = 30.0
