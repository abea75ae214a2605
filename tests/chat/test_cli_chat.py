"""`foreman chat` and `foreman history` as a user runs them: real processes against the
served stack (chat model stand-in, mock Realtime, SQLite history)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from chat_stack import ANN, chat_stack

from foreman.testing.chat_standin import Answer, Rule, When
from foreman.testing.server import free_port
from foreman.testing.timeouts import unit

SRC = Path(__file__).resolve().parents[2] / "src"
# A shell starts the command with Python's default SIGINT handler; a test worker may ignore
# the signal, and an ignored signal stays ignored in the child: restore it.
FOREMAN = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from foreman.cli import main; raise SystemExit(main())"
)


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FOREMAN_"))}
    env["PYTHONPATH"] = str(SRC)
    env["FOREMAN_URL"] = url
    return env


async def _run(url: str, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FOREMAN,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(url),
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin or b""), unit(60))
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _start(url: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FOREMAN,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(url),
    )


async def _read_until(stream: asyncio.StreamReader | None, marker: str) -> str:
    assert stream is not None
    seen = b""
    async with asyncio.timeout(unit(30)):
        while marker.encode() not in seen:
            chunk = await stream.read(4096)
            if not chunk:
                raise AssertionError(f"output ended before {marker!r}: {seen!r}")
            seen += chunk
    return seen.decode()


async def test_one_turn_prints_the_reply(tmp_path: Path) -> None:
    async with chat_stack(tmp_path) as stack:
        code, out, err = await _run(stack.url, "chat", "hello", "there")
    assert (code, out, err) == (0, "You said: hello there\n", "")


async def test_interactive_chat_with_history_then_ctrl_d(tmp_path: Path) -> None:
    async with chat_stack(tmp_path) as stack:
        code, out, err = await _run(stack.url, "chat", stdin=b"hello\n\n/history\n")
        conversation = (await stack.api.get("/api/history")).json()["conversations"][0]["id"]
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "You said: hello"
    assert lines[1].endswith("chat         you (typed): hello")
    assert lines[2].endswith("chat         foreman: You said: hello")
    assert conversation


async def test_a_pending_approval_is_answered_with_y(tmp_path: Path) -> None:
    async with chat_stack(tmp_path) as stack:
        proc = await _start(stack.url, "chat")
        assert proc.stdin is not None
        proc.stdin.write(b"text Ann that I am late\n")
        await proc.stdin.drain()
        before = await _read_until(proc.stdout, "needs your approval: type y to approve")
        assert stack.rest.messages == []
        proc.stdin.write(b"y\n")
        await proc.stdin.drain()
        after = await _read_until(proc.stdout, "Sent.")
        proc.stdin.close()
        _, err = await asyncio.wait_for(proc.communicate(), unit(20))
        (sms,) = stack.rest.messages
    assert proc.returncode == 0 and err == b""
    assert before.startswith("Texting Ann.\n[tool: send_sms ")
    assert "[approval of send_sms: approved]" in after and "[send_sms: done]" in after
    assert sms["to"] == ANN


async def test_voice_from_the_chat_and_back(tmp_path: Path) -> None:
    async with chat_stack(tmp_path) as stack:
        proc = await _start(stack.url, "chat")
        assert proc.stdin is not None
        proc.stdin.write(b"hi\n/voice\n")
        await proc.stdin.drain()
        await _read_until(proc.stdout, "[voice mode:")
        assert (await stack.api.get("/api/realtime/status")).json()["mode"] == "voice"
        proc.stdin.write(b"ok bye\n")
        await proc.stdin.drain()
        said = await _read_until(proc.stdout, "back to text]")
        proc.stdin.write(b"what happened?\n")
        proc.stdin.close()
        rest, err = await asyncio.wait_for(proc.communicate(), unit(20))
        context = stack.llm.requests[-1]["messages"]
    assert proc.returncode == 0 and err == b""
    # The reply's last piece and the mode change come on two connections: either may be
    # printed first.
    everything = said + rest.decode()
    assert everything.index("Goodbye!") < everything.index("You said: what happened?")
    assert any(m["role"] == "system" and "SUMMARY" in m["content"] for m in context)


async def test_ctrl_c_stops_the_reply_then_leaves(tmp_path: Path) -> None:
    slow = " ".join(f"w{i}" for i in range(500))
    rules = [Rule(When.user("talk"), Answer.say(slow, delay_ms=20))]
    async with chat_stack(tmp_path, rules) as stack:
        proc = await _start(stack.url, "chat")
        assert proc.stdin is not None
        proc.stdin.write(b"talk\n")
        await proc.stdin.drain()
        await _read_until(proc.stdout, "w3 ")
        proc.send_signal(signal.SIGINT)
        stopped = await _read_until(proc.stdout, "[stopped]")
        ended = await stack.event("chat.ended")
        proc.send_signal(signal.SIGINT)  # at the prompt: leave
        rest, err = await asyncio.wait_for(proc.communicate(), unit(20))
    assert ended["status"] == "stopped"
    assert stopped.rstrip().endswith("[stopped]")
    assert proc.returncode == 130 and rest == b"\n" and err == b""


async def test_history_list_show_and_export(tmp_path: Path) -> None:
    async with chat_stack(tmp_path) as stack:
        conversation = (await stack.chat("hello")).json()["conversation_id"]
        _, listed, _ = await _run(stack.url, "history", "list")
        code, shown, _ = await _run(stack.url, "history", "show", conversation)
        _, as_json, _ = await _run(stack.url, "history", "export", conversation, "--format", "json")
        _, as_md, _ = await _run(stack.url, "history", "export", conversation, "--format", "md")
        missing = await _run(stack.url, "history", "show", "conv-nope")
    assert listed.startswith(f"* {conversation}  ") and listed.rstrip().endswith("2 turns  hello")
    assert code == 0 and shown.splitlines()[0] == f"{conversation} (owner): hello"
    exported = json.loads(as_json)
    assert exported["conversation"]["id"] == conversation
    assert [t["kind"] for t in exported["turns"]] == ["typed", "reply"]
    assert as_md.startswith("# hello\n") and "**foreman** (chat, " in as_md
    assert missing[0] == 1 and missing[2].startswith("foreman history: HTTP 404: no conversation")
    assert missing[2].count("\n") == 1


async def test_a_server_that_is_not_there_is_one_line() -> None:
    code, out, err = await _run(f"http://127.0.0.1:{free_port()}", "chat", "hi")
    assert code == 1 and out == ""
    assert err.startswith("foreman chat: cannot reach foreman at") and err.count("\n") == 1
