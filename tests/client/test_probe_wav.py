"""`rt-probe say --wav FILE`: a real rt-probe process against the real app and the mock model;
the WAV file holds exactly the audio the mock spoke for that reply."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import wave
from pathlib import Path

import pytest
from client_stack import Stack, serve_stack

from foreman.audio.g711 import alaw_to_pcm16, ulaw_to_pcm16
from foreman.client import ForemanClient, StartOptions
from foreman.testing.timeouts import unit

SRC = Path(__file__).resolve().parents[2] / "src"
PROBE = "from foreman.probe import main; raise SystemExit(main())"


async def probe(url: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FOREMAN_"))}
    env["PYTHONPATH"] = str(SRC)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PROBE,
        "--server",
        url,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(unit(30)):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def spoken(stack: Stack) -> bytes:
    """Every audio byte the mock sent in its latest session."""
    return b"".join(
        base64.b64decode(e["delta"])
        for e in stack.mock.sessions[-1].sent
        if e["type"] == "response.output_audio.delta"
    )


@pytest.mark.parametrize(
    ("out_format", "rate", "to_pcm"),
    [
        ("pcm16", 24000, bytes),
        ("g711_ulaw", 8000, ulaw_to_pcm16),
        ("g711_alaw", 8000, alaw_to_pcm16),
    ],
)
async def test_say_writes_the_assistants_audio_to_a_wav_file(
    tmp_path: Path, out_format: str, rate: int, to_pcm: object
) -> None:
    wav_path = tmp_path / "reply.wav"
    async with serve_stack() as stack, ForemanClient(stack.url, token="") as client:
        await client.start_realtime(StartOptions(out_format=out_format))
        code, out, err = await probe(stack.url, "say", "--wav", str(wav_path), "hello")
        mock_audio = spoken(stack)

    assert code == 0, err
    assert out == "Hi there, I am the mock.\n"  # the text, as without --wav
    assert len(mock_audio) > rate // 2  # the mock really spoke (half a second or more)
    with wave.open(str(wav_path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, rate)
        assert w.getcomptype() == "NONE"
        pcm = w.readframes(w.getnframes())
    assert callable(to_pcm)
    assert pcm == to_pcm(mock_audio)


async def test_a_reply_without_audio_writes_no_file_and_says_so(tmp_path: Path) -> None:
    wav_path = tmp_path / "reply.wav"
    async with (
        serve_stack(realtime={"output_modalities": ["text"]}) as stack,
        ForemanClient(stack.url, token="") as client,
    ):
        await client.start_realtime()
        code, out, err = await probe(stack.url, "say", "--wav", str(wav_path), "hello")
    assert code == 1 and out.startswith("Hi there")
    assert err.count("\n") == 1 and "the reply had no audio" in err and str(wav_path) in err
    assert not wav_path.exists()
