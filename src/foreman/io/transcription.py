"""Speech to text over HTTP: OpenAI's `POST /v1/audio/transcriptions`.

https://platform.openai.com/docs/api-reference/audio/createTranscription: a multipart form
with `file` (a WAV, built here in memory from PCM16), `model` (`gpt-transcribe`; `whisper-1`
shuts down 2027-02-26), `language` and `prompt` (text the model should expect: the wake
phrase, so "hey vim" is not written "hey Vin"). The answer is `{"text": ...}`.

The key is sent only to a host the operator listed (`[realtime] api_key_hosts`) over
https:// (http:// only to this machine, for a local stand-in). Every failure raises
`TranscriptionError`: one line, the HTTP status and the service's message, never the key.
"""

from __future__ import annotations

import httpx

from foreman.audio.wav import write_wav
from foreman.exceptions import ForemanError
from foreman.io.realtime_ws import key_allowed

__all__ = ["OpenAITranscriber", "TranscriptionError"]


class TranscriptionError(ForemanError):
    """The transcription service refused or failed; the message says how."""


class OpenAITranscriber:
    """A phrase recogniser on the transcription API (`hear` returns the text heard)."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        model: str = "gpt-transcribe",
        api_key_hosts: list[str] | tuple[str, ...] = ("api.openai.com",),
        timeout_s: float = 10.0,
        sample_rate: int = 16000,
        language: str = "en",
    ) -> None:
        self.url = base_url.rstrip("/") + "/audio/transcriptions"
        if not api_key:
            raise TranscriptionError("no OPENAI_API_KEY is set for the transcription API")
        if not key_allowed(self.url, api_key_hosts):
            raise TranscriptionError(
                f"the API key is sent only over https:// to the hosts in [realtime] "
                f"api_key_hosts ({', '.join(api_key_hosts) or 'none'}); {self.url} is not one"
            )
        self.model = model
        self.sample_rate = sample_rate
        self.language = language
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def hear(self, pcm16: bytes, phrase: str) -> str:
        wav = write_wav(pcm16, self.sample_rate)
        form = {"model": self.model, "language": self.language, "response_format": "json"}
        if phrase:
            form["prompt"] = phrase
        try:
            answer = await self._client.post(
                self.url,
                headers=self._headers,
                files={"file": ("speech.wav", wav, "audio/wav")},
                data=form,
            )
        except httpx.HTTPError as exc:
            raise TranscriptionError(
                f"transcription request failed: {type(exc).__name__}"
            ) from None
        if answer.status_code != 200:
            raise TranscriptionError(
                f"transcription refused: HTTP {answer.status_code}: {_message(answer)}"
            )
        try:
            text = answer.json()["text"]
        except (ValueError, KeyError, TypeError):
            raise TranscriptionError("transcription answer has no text") from None
        if not isinstance(text, str):
            raise TranscriptionError("transcription answer has no text")
        return text

    async def aclose(self) -> None:
        await self._client.aclose()


def _message(answer: httpx.Response) -> str:
    try:
        error = answer.json().get("error", {})
        message = error.get("message") if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError):
        message = None
    return " ".join(str(message or answer.reason_phrase or "no message").split())[:200]
