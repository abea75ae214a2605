"""The offline engine's heavy parts, loaded once per server and shared by its sessions.

Speech to text (one Whisper model, or pocketsphinx with `[local] stt = "pocketsphinx"`: calls
take turns on it), the LLM client (one in-process
llama.cpp server, or the configured chat server), the synthesizer and the Silero VAD model
file. `ready()` loads what is missing in worker threads and turns every problem into one
`BackendError` line naming the fix (a missing extra, a missing system program, weights whose
hash does not match). Status shows each component, where it runs and how long it took to load.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from foreman.audio.silero import SileroUnavailable, find_model
from foreman.backends.local_tts import Synthesizer, make_synthesizer
from foreman.chat.llm import ChatCompletionsClient, LLMError
from foreman.chat.local_server import LocalChatClient, voice_llm_client
from foreman.config import Settings
from foreman.exceptions import BackendError
from foreman.speech.packaged import ModelUnavailable, ModelVerificationError
from foreman.speech.sphinx import SphinxTranscriber
from foreman.speech.whisper import WhisperSettings, WhisperTranscriber

__all__ = ["LocalRuntime", "Transcriber"]

log = logging.getLogger(__name__)


class Transcriber(Protocol):
    """What the engine needs of speech to text: `WhisperTranscriber` or `SphinxTranscriber`."""

    load_seconds: float | None

    @property
    def model_dir(self) -> Path | None: ...

    def load_sync(self) -> None: ...

    async def load(self) -> None: ...

    def transcribe_sync(self, pcm16: bytes) -> str: ...

    async def transcribe(self, pcm16: bytes) -> str: ...


_TRANSCRIBERS: dict[tuple[Path | None, WhisperSettings, Path | None], WhisperTranscriber] = {}
_TRANSCRIBERS_LOCK = threading.Lock()
_SPHINX: SphinxTranscriber | None = None


def _shared_transcriber(
    model_dir: Path | None, settings: WhisperSettings, cache_dir: Path | None
) -> WhisperTranscriber:
    """One Whisper model per configuration per process (it is ~150 MB and loads in ~0.5 s)."""
    key = (model_dir, settings, cache_dir)
    with _TRANSCRIBERS_LOCK:
        model = _TRANSCRIBERS.get(key)
        if model is None:
            model = WhisperTranscriber(model_dir, settings, cache_dir=cache_dir)
            _TRANSCRIBERS[key] = model
        return model


def _shared_sphinx() -> SphinxTranscriber:
    """One pocketsphinx decoder per process (its calls take turns under its lock)."""
    global _SPHINX
    with _TRANSCRIBERS_LOCK:
        if _SPHINX is None:
            _SPHINX = SphinxTranscriber()
        return _SPHINX


class LocalRuntime:
    """Built by the backend factory; `await ready()` before a session uses it."""

    def __init__(
        self,
        settings: Settings,
        *,
        cache_dir: Path | None = None,
        llm: ChatCompletionsClient | None = None,
        transcriber: Transcriber | None = None,
        synthesizer: Synthesizer | None = None,
    ) -> None:
        cfg = self.config = settings.local
        self._settings = settings
        self._cache_dir = cache_dir
        self.transcriber: Transcriber
        if transcriber is not None:
            self.transcriber = transcriber
        elif cfg.stt == "pocketsphinx":
            self.transcriber = _shared_sphinx()
        else:
            self.transcriber = _shared_transcriber(
                Path(cfg.stt_model_dir).expanduser() if cfg.stt_model_dir else None,
                WhisperSettings(
                    cpu_threads=cfg.stt_threads,
                    beam_size=cfg.stt_beam_size,
                    initial_prompt=cfg.stt_prompt or None,
                    fitted_window=cfg.stt_fitted_window,
                ),
                cache_dir,
            )
        self._llm = llm
        self._warm_llm: ChatCompletionsClient | None = None
        self.synthesizer = synthesizer
        self.vad_model: Path | None = None
        self.load_seconds: dict[str, float] = {}
        self._lock: asyncio.Lock | None = None
        self._ready = False
        self._transcribing = 0  # transcriptions submitted and not finished in their thread
        self._count_lock = threading.Lock()

    @property
    def transcribing(self) -> bool:
        """A transcription is running (or waiting) for any session of this runtime."""
        return self._transcribing > 0

    async def transcribe(self, pcm16: bytes) -> str:
        """Whisper on `pcm16` (16 kHz PCM16) in a worker thread, counted until the thread is
        done, even if the awaiting task was cancelled meanwhile (a thread cannot be)."""
        with self._count_lock:
            self._transcribing += 1
        return await asyncio.to_thread(self._transcribe_counted, pcm16)

    def _transcribe_counted(self, pcm16: bytes) -> str:
        try:
            return self.transcriber.transcribe_sync(pcm16)
        finally:
            with self._count_lock:
                self._transcribing -= 1

    @property
    def llm(self) -> ChatCompletionsClient:
        if self._llm is None:
            raise BackendError("the local engine is not ready (call ready() first)")
        return self._llm

    async def ready(self) -> None:
        """Load everything once (later calls return at once). Raises BackendError."""
        if self._ready:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._ready:
                return
            try:
                await self._load()
            except (ModelUnavailable, ModelVerificationError, SileroUnavailable, LLMError) as exc:
                raise BackendError(f"local engine: {exc}") from None
            self._ready = True

    def warm_sync(self) -> bool:
        """Load the models now (blocking: `foreman serve` runs it in a background thread at
        start, so the first call does not wait for them). A problem is logged as one line;
        the first session reports it again. True when loaded."""
        started = time.monotonic()
        try:
            self.transcriber.load_sync()
            llm = self._warm_llm = self._llm or voice_llm_client(self._settings, self._cache_dir)
            if isinstance(llm, LocalChatClient):
                llm.server.start_sync()
        except (ModelUnavailable, ModelVerificationError) as exc:
            log.warning("offline engine: %s", exc)
            return False
        log.info("offline engine: models loaded in %.1f s", time.monotonic() - started)
        return True

    @property
    def loaded_llm(self) -> ChatCompletionsClient | None:
        """The LLM client once `ready()` or `warm_sync()` made one."""
        return self._llm or self._warm_llm

    async def _load(self) -> None:
        started = time.monotonic()
        self.vad_model = await asyncio.to_thread(find_model)  # hashes the file once
        self.load_seconds["vad"] = time.monotonic() - started
        if self.synthesizer is None:
            started = time.monotonic()
            # In a thread: Piper verifies and loads its voice (the others only look up a path).
            self.synthesizer = await asyncio.to_thread(
                make_synthesizer,
                self.config.tts,
                self.config.tts_voice,
                self.config.tts_speed,
                cache_dir=self._cache_dir,
            )
            self.load_seconds["tts"] = time.monotonic() - started
        if self._llm is None:
            self._llm = voice_llm_client(self._settings, self._cache_dir)
        # Both in threads, one after the other: two cores, and each load is CPU-bound.
        await self.transcriber.load()
        self.load_seconds["stt"] = self.transcriber.load_seconds or 0.0
        if isinstance(self._llm, LocalChatClient):
            await self._llm.ready()
            self.load_seconds["llm"] = self._llm.server.load_seconds or 0.0

    @property
    def llm_name(self) -> str:
        return self._llm.model if self._llm is not None else self.config.llm

    @property
    def llm_where(self) -> str:
        if isinstance(self._llm, LocalChatClient):
            return f"in-process llama.cpp ({self._llm.server.base_url or 'not started'})"
        return self._llm.host if self._llm is not None else "not started"

    def components(self) -> dict[str, Any]:
        """What status shows: each component, where it runs, its load time in seconds."""
        return {
            "vad": {"name": "silero (onnxruntime)", "model": str(self.vad_model or "")},
            "stt": _stt_component(self.transcriber),
            "llm": {
                "name": self.llm_name,
                "runs": self.llm_where,
                "load_s": _rounded(self.load_seconds.get("llm")),
            },
            "tts": {
                "name": self.synthesizer.name if self.synthesizer else self.config.tts,
                "load_s": _rounded(self.load_seconds.get("tts")),
            },
        }


def _stt_component(stt: Transcriber) -> dict[str, Any]:
    if isinstance(stt, SphinxTranscriber):
        return {
            "name": stt.name,
            "model": str(stt.model_dir or "the pocketsphinx wheel's en-us model (not loaded)"),
            "load_s": _rounded(stt.load_seconds),
        }
    part: dict[str, Any] = {
        "name": "faster-whisper int8",
        "model": str(stt.model_dir or "packaged whisper base (not loaded)"),
        "load_s": _rounded(stt.load_seconds),
    }
    if isinstance(stt, WhisperTranscriber):
        part["window"] = "fitted" if stt.settings.fitted_window else "30 s"
        part["utterances"] = dict(stt.windows)
    return part


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
