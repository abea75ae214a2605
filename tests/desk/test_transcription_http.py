"""The HTTP transcription path against a loopback stand-in of the service."""

from __future__ import annotations

import pytest

from foreman.io.transcription import OpenAITranscriber, TranscriptionError
from foreman.testing.speech import synthesize
from foreman.testing.transcription_standin import TranscriptionStandIn

LOOPBACK = ["127.0.0.1"]


async def test_sends_a_wav_with_the_model_and_the_phrase_as_prompt() -> None:
    speech = synthesize("hey vim", 16000)
    async with TranscriptionStandIn("sk-test", "Hey Vim.") as standin:
        hear = OpenAITranscriber(standin.base_url, "sk-test", api_key_hosts=LOOPBACK)
        assert await hear.hear(speech, "hey vim") == "Hey Vim."
        await hear.aclose()
    (req,) = standin.requests
    assert req.form["model"] == "gpt-transcribe"
    assert req.form["prompt"] == "hey vim"
    assert req.sample_rate == 16000 and req.pcm16 == speech


async def test_a_refusal_is_one_line_without_the_key() -> None:
    async with TranscriptionStandIn("sk-right") as standin:
        hear = OpenAITranscriber(standin.base_url, "sk-wrong-secret", api_key_hosts=LOOPBACK)
        with pytest.raises(TranscriptionError) as err:
            await hear.hear(synthesize("hello", 16000), "hey vim")
        await hear.aclose()
    assert "HTTP 401" in str(err.value) and "Incorrect API key" in str(err.value)
    assert "sk-wrong-secret" not in str(err.value) and "\n" not in str(err.value)


async def test_an_unreachable_service_is_one_line() -> None:
    async with TranscriptionStandIn() as standin:
        url = standin.base_url
    hear = OpenAITranscriber(url, "sk-test", api_key_hosts=LOOPBACK, timeout_s=2)
    with pytest.raises(TranscriptionError, match="request failed: ConnectError"):
        await hear.hear(synthesize("hello", 16000), "hey vim")
    await hear.aclose()


def test_the_key_goes_only_to_listed_hosts_over_tls() -> None:
    with pytest.raises(TranscriptionError, match="api_key_hosts"):
        OpenAITranscriber("http://api.openai.com/v1", "sk-test")  # no TLS
    with pytest.raises(TranscriptionError, match="api_key_hosts"):
        OpenAITranscriber("https://elsewhere.example/v1", "sk-test")
    with pytest.raises(TranscriptionError, match="no OPENAI_API_KEY"):
        OpenAITranscriber("https://api.openai.com/v1", "")
