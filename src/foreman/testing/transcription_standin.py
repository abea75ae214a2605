"""A loopback stand-in for OpenAI's `POST /v1/audio/transcriptions`, for tests and local runs.

It checks what the real service requires (a bearer key, a multipart form with `file` and
`model`), reads the WAV it was sent, and answers `{"text": ...}` from `answer(pcm16, rate,
form)` (default: a fixed text). Every request is recorded in `requests`.

    async with TranscriptionStandIn(key="sk-test", answer=lambda *_: "Hey Vim") as standin:
        OpenAITranscriber(standin.base_url, "sk-test", api_key_hosts=["127.0.0.1"])
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from foreman.audio.wav import read_wav
from foreman.exceptions import AudioFormatError

try:
    from aiohttp import BodyPartReader, web
except ImportError as exc:  # an optional extra: say how to get it
    raise ImportError(
        "the transcription stand-in needs aiohttp: install Foreman with its 'testing' extra"
    ) from exc

__all__ = ["TranscriptionRequest", "TranscriptionStandIn"]

Answer = Callable[[bytes, int, dict[str, str]], str]


@dataclass(frozen=True)
class TranscriptionRequest:
    form: dict[str, str]
    pcm16: bytes
    sample_rate: int


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "invalid_request_error"}}, status=status
    )


class TranscriptionStandIn:
    def __init__(self, key: str = "sk-test", answer: Answer | str = "") -> None:
        self.key = key
        self._answer: Answer = (lambda *_: answer) if isinstance(answer, str) else answer
        self.requests: list[TranscriptionRequest] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.arrived = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> TranscriptionStandIn:
        app = web.Application()
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _transcribe(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return _error(401, "Incorrect API key provided")
        if not request.content_type.startswith("multipart/form-data"):
            return _error(400, "expected multipart/form-data")
        form: dict[str, str] = {}
        wav = b""
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.name == "file":
                wav = bytes(await part.read())
            else:
                form[part.name] = await part.text()
        if not wav:
            return _error(400, "you must provide a file")
        if not form.get("model"):
            return _error(400, "you must provide a model parameter")
        try:
            pcm16, rate = read_wav(wav)
        except AudioFormatError as exc:
            return _error(400, f"invalid file format: {exc}")
        self.requests.append(TranscriptionRequest(form, pcm16, rate))
        self.arrived.set()
        return web.json_response({"text": self._answer(pcm16, rate, form)})
