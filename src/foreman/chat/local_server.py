"""llama.cpp's own server, in this process, on a loopback port: the local model for chat
and for the offline voice engine.

`xllamacpp` (a prebuilt wheel) embeds llama.cpp's `llama-server`; started here on 127.0.0.1
with an ephemeral port and a random API key made at start (its CORS policy admits any
origin, so a web page in the owner's browser must not be able to use it). It serves the
OpenAI Chat Completions format, so `LocalChatClient` is an ordinary `ChatCompletionsClient`
that starts the server on first use. Weights come from packages through
`foreman.speech.packaged` (assembled once into the user's cache and sha256-checked) or from
a GGUF file the config names. One server per model per process, shared by every voice
session and chat: a second copy of the weights would cost the same memory again.

Loading takes about 1 s for the 0.5B model (plus a one-time join of its parts); it runs in a
worker thread. Nothing is ever downloaded.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foreman.chat.llm import (
    ChatCompletionsClient,
    Completion,
    LLMError,
    LLMEvent,
    Message,
    chat_refusal,
)
from foreman.chat.local_models import LLM_MODELS
from foreman.config import Settings
from foreman.speech.catalog import OFFLINE_INSTALL_HINT
from foreman.speech.packaged import ModelBundle, ModelUnavailable, ensure_bundle

__all__ = [
    "LocalChatClient",
    "LocalLLMServer",
    "LocalModelSpec",
    "local_model_spec",
    "shared_server",
    "voice_llm_client",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LocalModelSpec:
    """Which weights and how to run them. `bundle` (packaged weights) or `path` (a GGUF)."""

    name: str
    bundle: ModelBundle | None = None
    path: Path | None = None
    threads: int = 2
    context: int = 8192
    parallel: int = 2  # concurrent requests (calls and chat); each gets context/parallel
    max_tokens: int = 256  # the longest answer (spoken answers are short; a runaway is cut)
    cache_dir: Path | None = None


class LocalLLMServer:
    """One in-process llama.cpp server. `start_sync()` (blocking, idempotent) or `start()`."""

    def __init__(self, spec: LocalModelSpec) -> None:
        self.spec = spec
        self.api_key = secrets.token_urlsafe(24)
        self.base_url = ""
        self.load_seconds: float | None = None
        self.model_path: Path | None = None
        self._server: Any = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._server is not None

    def start_sync(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            started = time.monotonic()
            try:
                import xllamacpp
            except ImportError:
                raise ModelUnavailable(
                    f"xllamacpp (the in-process llama.cpp server) is not installed; install "
                    f"it with: {OFFLINE_INSTALL_HINT}"
                ) from None
            path = self._weights()
            params = xllamacpp.CommonParams()
            params.model.path = str(path)
            params.model_alias = self.spec.name
            params.n_ctx = self.spec.context
            params.n_parallel = self.spec.parallel
            params.n_predict = self.spec.max_tokens
            params.cpuparams.n_threads = self.spec.threads
            params.cpuparams_batch.n_threads = self.spec.threads
            params.hostnames = ["127.0.0.1"]
            params.port = 0
            params.api_keys = [self.api_key]
            params.use_jinja = True  # the model's own chat template, tools included
            params.verbosity = -1
            try:
                self._server = xllamacpp.Server(params)
            except Exception as exc:  # the extension raises plain RuntimeErrors
                raise ModelUnavailable(
                    f"llama.cpp could not load {path}: {str(exc).strip() or type(exc).__name__}"
                ) from None
            self.base_url = str(self._server.listening_address).rstrip("/") + "/v1"
            self.model_path = path
            self.load_seconds = time.monotonic() - started
            log.info(
                "local model %s loaded in %.2f s at %s",
                self.spec.name,
                self.load_seconds,
                self.base_url,
            )

    async def start(self) -> None:
        await asyncio.to_thread(self.start_sync)

    def _weights(self) -> Path:
        if self.spec.path is not None:
            if not self.spec.path.is_file():
                raise ModelUnavailable(
                    f"the model file {self.spec.path} does not exist ([local] llm)"
                )
            return self.spec.path
        if self.spec.bundle is None:
            raise ModelUnavailable("no local model configured ([local] llm)")
        return ensure_bundle(self.spec.bundle, self.spec.cache_dir) / "model.gguf"

    def status(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "runs": "in-process llama.cpp",
            "url": self.base_url,
            "load_s": None if self.load_seconds is None else round(self.load_seconds, 3),
            "threads": self.spec.threads,
        }


_SERVERS: dict[LocalModelSpec, LocalLLMServer] = {}
_SERVERS_LOCK = threading.Lock()


def shared_server(spec: LocalModelSpec) -> LocalLLMServer:
    """The process's server for `spec` (created, not started, on first request)."""
    with _SERVERS_LOCK:
        server = _SERVERS.get(spec)
        if server is None:
            server = _SERVERS[spec] = LocalLLMServer(spec)
        return server


class LocalChatClient(ChatCompletionsClient):
    """A Chat Completions client of a `LocalLLMServer`, which it starts on first use."""

    def __init__(self, server: LocalLLMServer, *, timeout_s: float = 60.0) -> None:
        super().__init__(
            base_url=server.base_url or "http://127.0.0.1/v1",
            model=server.spec.name,
            api_key=server.api_key,
            timeout_s=timeout_s,
            max_retries=0,
        )
        self.server = server
        self.host = "in-process llama.cpp"

    async def ready(self) -> None:
        """Start the server if needed (raises LLMError with a one-line fix)."""
        if not self.server.running:
            try:
                await self.server.start()
            except ModelUnavailable as exc:
                raise LLMError(str(exc)) from None
        if self.base_url != self.server.base_url:
            self.base_url = self.server.base_url
            self._client.base_url = self.server.base_url

    async def stream(
        self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] = ()
    ) -> AsyncIterator[LLMEvent]:
        await self.ready()
        async for event in super().stream(messages, tools=tools):
            yield event

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Mapping[str, Any]] = (),
        max_tokens: int | None = None,
    ) -> Completion:
        await self.ready()
        return await super().complete(messages, tools=tools, max_tokens=max_tokens)

    def status(self) -> dict[str, Any]:
        return {**super().status(), "server": self.server.status()}


def local_model_spec(settings: Settings, cache_dir: Path | None = None) -> LocalModelSpec:
    """The in-process model `[local]` asks for. Raises ModelUnavailable for a name that is
    neither a packaged model nor a .gguf path."""
    cfg = settings.local
    bundle = LLM_MODELS.get(cfg.llm)
    path = None
    if bundle is None:
        if not cfg.llm.endswith(".gguf"):
            raise ModelUnavailable(
                f"[local] llm = {cfg.llm!r} is neither a packaged model "
                f"({', '.join(LLM_MODELS)}) nor the path of a .gguf file"
            )
        path = Path(cfg.llm).expanduser()
    return LocalModelSpec(
        name=cfg.llm if bundle is not None else Path(cfg.llm).stem,
        bundle=bundle,
        path=path,
        threads=cfg.llm_threads,
        context=cfg.llm_context,
        parallel=cfg.llm_parallel,
        max_tokens=cfg.llm_max_tokens,
        cache_dir=cache_dir,
    )


def voice_llm_client(settings: Settings, cache_dir: Path | None = None) -> ChatCompletionsClient:
    """The offline engine's model: the chat model when `[chat]` can reach one (a local
    server at its base_url, or OpenAI with a key), else the in-process local model."""
    if chat_refusal(settings.chat) is None:
        return ChatCompletionsClient.from_config(settings.chat)
    return LocalChatClient(
        shared_server(local_model_spec(settings, cache_dir)), timeout_s=settings.chat.timeout_s
    )
