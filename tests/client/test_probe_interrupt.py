"""Ctrl-C in `rt-probe`, as a user presses it: a real process, a real SIGINT, in the middle of
a `say` whose reply is waiting for an approval (so the turn cannot end on its own)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from client_stack import ANN, serve_stack

from foreman.client import ForemanClient
from foreman.testing.mock_realtime import Match, Reply, Rule, Scenario
from foreman.testing.timeouts import unit

SRC = Path(__file__).resolve().parents[2] / "src"
# The parent may ignore SIGINT (a test runner's worker), and an ignored signal stays ignored
# in the child; a shell starts rt-probe with Python's default handler, so restore it.
PROBE = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from foreman.probe import main; raise SystemExit(main())"
)


# While the approval is pending, the model may or may not answer the "waiting" note; if it
# does, its answer comes far too late to print, so nothing but the probe's own newline can
# follow the tool notice on stdout.
WAITING = Scenario(
    [
        Rule(Match.user_text("text Ann"), Reply.call("send_sms", {"to": ANN, "body": "late"})),
        Rule(Match.any(), Reply.say("Still waiting.", delay_ms=int(unit(600) * 1000))),
    ]
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FOREMAN_"))}
    env["PYTHONPATH"] = str(SRC)
    return env


async def _read_until(stream: asyncio.StreamReader, marker: bytes) -> bytes:
    seen = b""
    while marker not in seen:
        chunk = await stream.read(4096)
        if not chunk:
            raise AssertionError(f"output ended before {marker!r}: {seen!r}")
        seen += chunk
    return seen


async def test_ctrl_c_during_say_prints_a_newline_and_exits_130() -> None:
    async with serve_stack(WAITING) as stack, ForemanClient(stack.url, token="") as client:
        await client.start_realtime()
        bus = stack.bus.subscribe()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            PROBE,
            "--server",
            stack.url,
            "say",
            "text Ann that I am running late",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_env(),
        )
        assert proc.stdout is not None and proc.stderr is not None
        try:
            before = await asyncio.wait_for(
                _read_until(proc.stdout, b"[tool call: send_sms]\n"), unit(20)
            )
            while (await asyncio.wait_for(bus.get(), unit(10))).kind != "approval.prompt":
                pass  # the turn now waits for a human: it cannot end before the signal
            proc.send_signal(signal.SIGINT)
            after, err = await asyncio.wait_for(proc.communicate(), unit(10))
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await client.stop_realtime()
    assert proc.returncode == 130
    assert before.endswith(b"[tool call: send_sms]\n")
    assert after == b"\n" and err == b""
