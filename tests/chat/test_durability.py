"""Durability: `foreman serve` is killed (SIGKILL) in the middle of a voice session; after a
restart on the same file, every turn it had acknowledged (a chat reply returned, a
`history.turn` event sent) is in the history, and the cut-short session has a summary."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from foreman.client import ChatDone, Done, ForemanClient
from foreman.stores.records import INTERRUPTED_REASON
from foreman.testing.chat_standin import ChatStandIn
from foreman.testing.mock_realtime import MockRealtimeServer, Scenario
from foreman.testing.server import free_port
from foreman.testing.timeouts import unit

pytestmark = pytest.mark.e2e
SRC = Path(__file__).resolve().parents[2] / "src"


@contextlib.asynccontextmanager
async def serve(config: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FOREMAN_"))}
    env.update(PYTHONPATH=str(SRC), PYTHONUNBUFFERED="1", FOREMAN_CONFIG=str(config))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "foreman",
        "serve",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    assert proc.stdout is not None
    seen: list[bytes] = []
    async with asyncio.timeout(unit(30)):
        while b"Application startup complete" not in b"".join(seen[-1:]):
            line = await proc.stdout.readline()
            if not line:
                raise AssertionError(b"".join(seen).decode())
            seen.append(line)
    drain = asyncio.ensure_future(proc.stdout.read())  # keep the pipe from filling up
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), unit(15))
        await drain


async def test_every_acknowledged_turn_survives_a_kill(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with ChatStandIn() as llm, MockRealtimeServer(Scenario()) as mock:
        config = tmp_path / "foreman.toml"
        config.write_text(
            f"[server]\nport = {port}\n"
            f'[storage]\ndb_path = "{tmp_path / "foreman.db"}"\n'
            f'[calendar]\nics_path = "{tmp_path / "cal.ics"}"\n'
            f'[realtime]\nendpoint = "{mock.url}"\n'
            f'[chat]\nbase_url = "{llm.base_url}"\nmodel = "standin"\n'
        )
        acknowledged: list[tuple[int, str]] = []
        async with serve(config) as server, ForemanClient(url, token="") as client:
            seen: list[dict[str, Any]] = []
            progress = asyncio.Condition()

            async def listen() -> None:
                async for event in client.events(["history.", "chat."]):
                    async with progress:
                        seen.append({"kind": event.kind, **event.data})
                        progress.notify_all()

            async def wait_for(pred: Any) -> dict[str, Any]:
                async with asyncio.timeout(unit(15)), progress:
                    await progress.wait_for(lambda: any(pred(e) for e in seen))
                return next(e for e in seen if pred(e))

            listener = asyncio.ensure_future(listen())
            # Chat until the event stream has seen a whole turn (it is subscribed by then).
            for i in range(5):
                reply = await client.chat(f"chat message {i}")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(unit(2)), progress:
                        await progress.wait_for(
                            lambda r=reply: any(
                                e["kind"] == "chat.ended" and e["session_id"] == r.session_id
                                for e in seen
                            )
                        )
                        break
            conversation = reply.conversation_id
            pieces = [p async for p in client.chat_stream("one more, streamed")]
            assert isinstance(pieces[-1], ChatDone) and pieces[-1].completed

            # Voice, seeded from the chat; a turn is spoken and stored; then the kill.
            await client.start_realtime()
            said = [p async for p in client.say("hello from the desk")]
            assert isinstance(said[-1], Done)
            await wait_for(lambda e: e["kind"] == "history.turn" and e["turn"] == "speech")
            acknowledged = sorted(
                (e["seq"], e["text"])
                for e in seen
                if e["kind"] == "history.turn" and e["conversation_id"] == conversation
            )
            server.send_signal(signal.SIGKILL)
            await asyncio.wait_for(server.wait(), unit(10))
            listener.cancel()
            with contextlib.suppress(BaseException):
                await listener

        assert "hello from the desk" in {text for _, text in acknowledged}
        async with serve(config), ForemanClient(url, token="") as client:
            detail = await client.conversation(conversation)
            status = await client.realtime_status()
    stored = {(t.seq, t.text) for t in detail.turns}
    missing = [turn for turn in acknowledged if turn not in stored]
    assert missing == []
    # The replies of every chat turn were acknowledged by their responses too.
    assert {"You said: one more, streamed", "You said: hello from the desk"} <= {
        t.text for t in detail.turns
    }
    # The voice session the kill cut short got a digest summary at start-up.
    summary = detail.turns[-1]
    assert summary.kind == "summary" and summary.channel == "local_voice"
    assert summary.data["reason"] == INTERRUPTED_REASON and summary.data["source"] == "digest"
    assert 'the user said "hello from the desk"' in summary.text.lower()
    assert status.mode == "text" and status.active is False
