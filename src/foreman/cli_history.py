"""`foreman history list | show ID | export ID --format json|md`: the conversations of chat
and voice, with the provenance of every turn, from a running server (through the typed
client). Errors are one line on stderr (exit 1)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any, Final, TextIO

from foreman.client import ClientError, ConversationDetail, ForemanClient, HistoryTurn

INTERRUPTED: Final = 130


def quiet_http(args: argparse.Namespace) -> None:
    """The HTTP client logs every request at info: noise in a conversation."""
    if getattr(args, "log_level", "info") != "debug":
        logging.getLogger("httpx").setLevel(logging.WARNING)


def cmd_history(args: argparse.Namespace) -> int:
    quiet_http(args)
    try:
        return asyncio.run(_history(args, sys.stdout))
    except ClientError as exc:
        print(f"foreman history: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return INTERRUPTED


async def _history(args: argparse.Namespace, out: TextIO) -> int:
    async with ForemanClient(getattr(args, "server", None)) as client:
        if args.history_command == "list":
            conversations = await client.conversations(args.limit)
            if not conversations:
                out.write("no conversations yet\n")
            for c in conversations:
                mark = "*" if c.current else " "
                out.write(f"{mark} {c.id}  {when(c.updated_at)}  {c.turns:4d} turns  {c.title}\n")
            return 0
        detail = await client.conversation(args.id)
        if args.history_command == "show":
            c = detail.conversation
            out.write(f"{c.id} ({c.party}): {c.title}\n")
            out.writelines(line + "\n" for line in format_turns(detail.turns))
        elif args.format == "json":
            body = {
                "conversation": dict(detail.conversation.raw),
                "turns": [dict(t.raw) for t in detail.turns],
            }
            out.write(json.dumps(body, ensure_ascii=False, indent=2) + "\n")
        else:
            out.write(format_markdown(detail))
        return 0


_LABELS: Final = {
    "typed": "you (typed)",
    "spoken": "you (said)",
    "reply": "foreman",
    "speech": "foreman (said)",
    "tool_call": "tool call",
    "tool_result": "tool result",
    "approval": "approval",
    "summary": "summary",
}


def format_turns(turns: Sequence[HistoryTurn]) -> list[str]:
    """One line per turn: seq, time, channel, who, text (a cut utterance says so)."""
    lines = []
    for t in turns:
        text = " ".join(t.text.split())
        if t.kind == "speech" and t.data.get("cut"):
            text += " [interrupted]"
        if t.kind == "tool_call":
            text = f"{t.data.get('name', t.text)} {compact(t.data.get('arguments'))}"
        label = _LABELS.get(t.kind, t.kind)
        lines.append(f"{t.seq:4d}  {when(t.at)}  {t.channel:<11}  {label}: {text}")
    return lines


def format_markdown(detail: ConversationDetail) -> str:
    """The conversation as Markdown: a heading, then one paragraph per turn."""
    c = detail.conversation
    parts = [
        f"# {c.title or c.id}",
        "",
        f"Conversation `{c.id}` ({c.party}), {when(c.created_at)}.",
        "",
    ]
    for t in detail.turns:
        label = _LABELS.get(t.kind, t.kind)
        where = f"{t.channel}, {when(t.at)}"
        text = t.text
        if t.kind == "speech" and t.data.get("cut"):
            full = str(t.data.get("full_text", ""))
            text += f" *(interrupted; the rest, not heard: {full[len(t.text) :].strip()})*"
        elif t.kind == "tool_call":
            text = f"`{t.data.get('name', t.text)}` `{compact(t.data.get('arguments'))}`"
        elif t.kind in ("tool_result", "approval"):
            text = f"`{text}`"
        parts += [f"**{label}** ({where}): {text}", ""]
    return "\n".join(parts)


def when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at)) if at else "?"


def compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
