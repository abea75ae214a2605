"""`foreman fake-call` as a user runs it: a real `foreman fake-call` process calls a real
`foreman serve` process (signed webhook, signed media socket), whose model is the bundled mock
Realtime server; the recording holds exactly what the mock said."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import sys
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from foreman.api.app import create_app
from foreman.audio.g711 import ulaw_to_pcm16
from foreman.cli import main
from foreman.client import ForemanClient
from foreman.config import settings_from_dict
from foreman.testing.mock_realtime import Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.server import free_port, serve_app
from foreman.testing.timeouts import unit

pytestmark = pytest.mark.e2e

SRC = Path(__file__).resolve().parents[1] / "src"
TOKEN = "local-fake-token"
CALLER = "+15550001234"
GREETING = "Hello, Foreman here."
ANSWER = "I heard you loud and clear."
SCENARIO = Scenario(
    [
        Rule(Match(instructions="Greet"), Reply.say(GREETING)),
        Rule(Match.audio(1), Reply.say(ANSWER)),
    ]
)
FRAME = 160  # µ-law bytes per 20 ms: the server pads each reply's last frame with silence


def _env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FOREMAN_", "TWILIO_"))
    }
    env["PYTHONPATH"] = str(SRC)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Served:
    url: str
    config: Path
    mock: MockRealtimeServer
    output: list[str]


async def _drain(stream: asyncio.StreamReader, into: list[str], ready: asyncio.Event) -> None:
    """Keep reading the server's log (a full pipe would stall it); note when it serves."""
    async for raw in stream:
        line = raw.decode(errors="replace")
        into.append(line)
        if "serving on " in line:
            ready.set()
    ready.set()  # it exited: let the waiter see that


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with MockRealtimeServer(SCENARIO) as mock:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        config = tmp_path / "foreman-local.toml"
        config.write_text(
            f'[server]\nport = {port}\n[realtime]\nendpoint = "{mock.url}"\n'
            f'[twilio]\npublic_url = "{url}"\nauth_token = "{TOKEN}"\n'
            f'[storage]\ndb_path = "{tmp_path / "foreman.db"}"\n'
            f'[calendar]\nics_path = "{tmp_path / "cal.ics"}"\n'
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "foreman",
            "serve",
            "--config",
            str(config),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=_env(),
        )
        assert proc.stdout is not None
        output: list[str] = []
        ready = asyncio.Event()
        drain = asyncio.create_task(_drain(proc.stdout, output, ready))
        try:
            async with asyncio.timeout(unit(30)):
                await ready.wait()
            assert proc.returncode is None, "".join(output)
            yield Served(url, config, mock, output)
        finally:
            if proc.returncode is None:
                proc.terminate()
            async with asyncio.timeout(unit(15)):
                await proc.wait()
            await drain


async def fake_call(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "foreman",
        "fake-call",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
    )
    async with asyncio.timeout(unit(90)):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def spoken_replies(mock: MockRealtimeServer) -> list[bytes]:
    """The audio of each reply the mock gave in its latest session, in order."""
    replies: dict[str, bytearray] = {}
    for event in mock.sessions[-1].sent:
        if event["type"] == "response.output_audio.delta":
            replies.setdefault(event["item_id"], bytearray()).extend(
                base64.b64decode(event["delta"])
            )
    return [bytes(audio) for audio in replies.values()]


def as_played(reply: bytes) -> bytes:
    """A reply as the phone plays it: whole 20 ms frames, the last one padded with silence."""
    return reply + b"\xff" * (-len(reply) % FRAME)


async def test_fake_call_through_a_running_server_records_the_assistant(
    served: Served, tmp_path: Path
) -> None:
    recording = tmp_path / "reply.wav"
    code, out, err = await fake_call(
        "--config", str(served.config), "--record", str(recording), "--from", CALLER
    )
    assert code == 0, err + "".join(served.output)
    assert err == ""
    summary = re.fullmatch(
        r"call (CA[0-9a-f]{32}): heard (\d+\.\d) s of the assistant; "
        r"the server recorded: caller hung up; saved (\S+)\n",
        out,
    )
    assert summary, out
    call_sid = summary[1]
    assert summary[3] == str(recording)

    # The mock greeted, then heard the caller's sentence as one audio turn and answered it.
    greeting, answer = spoken_replies(served.mock)
    heard = ulaw_to_pcm16(as_played(greeting) + as_played(answer))
    with wave.open(str(recording), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        assert w.readframes(w.getnframes()) == heard
    assert summary[2] == f"{len(heard) / 2 / 8000:.1f}"

    async with ForemanClient(served.url, token="") as client:
        calls = await client.calls()
    record = next(c for c in calls.recent if c.call_sid == call_sid)
    assert record.from_ == CALLER and record.direction == "inbound"
    assert record.reason == "caller hung up" and record.ended_at >= record.started_at > 0
    assert not calls.active


async def test_a_wrong_token_is_refused_with_the_fix(served: Served, tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text(
        served.config.read_text().replace(f'auth_token = "{TOKEN}"', 'auth_token = "wrong"')
    )
    code, out, err = await fake_call("--config", str(other))
    assert code == 2 and out == ""
    assert err.startswith("foreman fake-call: the server refused the call's signature (403")
    assert "same --config" in err and err.count("\n") == 1
    assert "wrong" not in err and TOKEN not in err  # no secret in the message


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")


def command_lines(err: str) -> str:
    """What the command printed: the in-process server's own log lines (same process here,
    another one in real use) left out."""
    return "".join(line for line in err.splitlines(True) if not LOG_LINE.match(line))


async def test_a_server_without_twilio_settings_answers_503_and_fake_call_says_how_to_set_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    async with serve_app(create_app(settings_from_dict({}))) as url:
        code = await asyncio.to_thread(
            main, ["fake-call", "--config", str(config), "--server", url]
        )
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    first, *hint = command_lines(captured.err).splitlines()
    assert first == (
        "foreman fake-call: the server answered 503: phone calls are not configured in this "
        "server: set twilio.auth_token (or TWILIO_AUTH_TOKEN), twilio.public_url "
        "(see docs/phone.md)"
    )
    assert "  [twilio]" in hint and f'  public_url = "{url}"' in hint
    assert any("auth_token = " in line for line in hint)


async def test_a_model_that_cannot_be_reached_ends_the_call_and_the_record_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"ws://127.0.0.1:{free_port()}/v1/realtime"
    twilio = {"public_url": "https://voice.example.com", "auth_token": TOKEN}
    config = tmp_path / "foreman.toml"
    config.write_text(f'[twilio]\npublic_url = "{twilio["public_url"]}"\nauth_token = "{TOKEN}"\n')
    app = create_app(settings_from_dict({"realtime": {"endpoint": dead}, "twilio": twilio}))
    async with serve_app(app) as url:
        code = await asyncio.to_thread(
            main, ["fake-call", "--config", str(config), "--server", url]
        )
    captured = capsys.readouterr()
    assert code == 1
    assert re.fullmatch(
        # The apology (a clip: no model answered), then the server hung up.
        r"call CA[0-9a-f]{32}: heard 4\.\d s of the assistant; the server recorded: "
        r"backend failed to start: 127\.0\.0\.1:\d+: connection refused\n",
        captured.out,
    ), captured.out
    assert command_lines(captured.err) == (
        "foreman fake-call: the assistant did not answer "
        "(the server ended the call, WebSocket close code 1000)\n"
    )
