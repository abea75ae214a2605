"""`rt-probe`: a small dev harness for a running `foreman serve`.

    rt-probe status | start [ENDPOINT] [--model M] | stop | say [--wav FILE] TEXT
Server URL from --server or $FOREMAN_URL (default http://127.0.0.1:8765); token from
$FOREMAN_API_TOKEN. `--json` prints the server's JSON. Errors: one line on stderr, exit 1.
Ctrl-C: a newline, exit 130.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from foreman.audio.wav import pcm16_of, write_wav
from foreman.client import (
    DEFAULT_URL,
    Audio,
    ClientError,
    Delta,
    Done,
    ForemanClient,
    RealtimeStatus,
    StartOptions,
    ToolNotice,
)

INTERRUPTED = 130  # the shell's code for a process ended by SIGINT


class SessionEnded(ClientError):
    """The voice session closed during the turn."""


def format_status(st: RealtimeStatus) -> list[str]:
    state = "active" if st.active else "inactive"
    line = f"{state}  model={st.model}  mode={st.mode}"
    if st.session_id:
        line += f"  session={st.session_id}  since={st.since}"
    if st.endpoint_host:
        line += f"  endpoint={st.endpoint_host}"
    lines = [line]
    if st.last_error:
        lines.append(f"last_error: {st.last_error}")
    for name, part in (st.components or {}).items():  # the offline engine's pieces
        if isinstance(part, Mapping):
            where = part.get("runs") or part.get("model")
            load = part.get("load_s")
            text = f"  {name}: {part.get('name', '')}" + (f" ({where})" if where else "")
            lines.append(
                text + (f", loaded in {load:g} s" if isinstance(load, int | float) else "")
            )
    return lines


def _print_status(st: RealtimeStatus, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(dict(st.raw)) + "\n")
    else:
        out.writelines(line + "\n" for line in format_status(st))


class ReplyAudio:
    """The spoken reply, gathered piece by piece, as PCM16 at the model's rate."""

    def __init__(self) -> None:
        self.pcm = bytearray()
        self.rate: int | None = None

    def add(self, piece: Audio) -> None:
        rate = piece.sample_rate
        if rate is None:
            raise ClientError(
                f"the reply's audio is in a format rt-probe cannot write: {piece.format}"
            )
        if self.rate is not None and rate != self.rate:
            raise ClientError("the reply's audio changed its format part-way")
        self.rate = rate
        self.pcm += pcm16_of(piece.audio, piece.format)

    def save(self, path: Path) -> None:
        """Write the WAV file; ClientError when there is nothing to write or it cannot be."""
        if self.rate is None:
            raise ClientError(
                f"the reply had no audio (is the session's output text only?); {path} not written"
            )
        try:
            path.write_bytes(write_wav(bytes(self.pcm), self.rate))
        except OSError as exc:
            raise ClientError(f"cannot write {path}: {exc.strerror or exc}") from None


async def say(
    client: ForemanClient, text: str, as_json: bool, out: TextIO, wav: Path | None = None
) -> int:
    """Stream one turn's reply to `out` (and its audio to the WAV file `wav`); 0 when the
    turn completed, 1 otherwise."""
    status = "completed"
    audio = ReplyAudio()
    async for piece in client.say(text, audio=wav is not None):
        if isinstance(piece, Audio):
            audio.add(piece)
        if as_json:
            out.write(json.dumps(dict(piece.raw)) + "\n")
        elif isinstance(piece, Delta):
            out.write(piece.text)
        elif isinstance(piece, ToolNotice):
            out.write(f"\n[tool call: {piece.name}]\n")
        out.flush()
        if isinstance(piece, Done):
            status = piece.status
            if piece.error:
                raise SessionEnded(f"session ended: {piece.error}")
    if not as_json:
        out.write("\n")
    if wav is not None:
        audio.save(wav)
    return 0 if status == "completed" else 1


async def run(args: argparse.Namespace, out: TextIO) -> int:
    async with ForemanClient(args.server) as client:
        if args.command == "status":
            _print_status(await client.realtime_status(), args.json, out)
        elif args.command == "start":
            options = StartOptions(
                endpoint=args.endpoint,
                model=args.model,
                voice=args.voice,
                instructions=args.instructions,
                out_format=args.out_format,
            )
            _print_status(await client.start_realtime(options), args.json, out)
        elif args.command == "stop":
            _print_status(await client.stop_realtime(), args.json, out)
        elif args.command == "say":
            return await say(client, " ".join(args.text), args.json, out, args.wav)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rt-probe", description="Drive the voice session of a running `foreman serve`."
    )
    parser.add_argument(
        "--server", help=f"server URL (default $FOREMAN_URL or {DEFAULT_URL})", metavar="URL"
    )
    parser.add_argument("--json", action="store_true", help="print the server's JSON")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=summary)

    command("status", "Show whether a voice session runs, its model and last error.")
    start = command("start", "Start the voice session (the server's config fills the gaps).")
    start.add_argument("endpoint", nargs="?", help="Realtime server URL (ws:// or wss://)")
    start.add_argument("--model", help="Realtime model name")
    start.add_argument("--voice", help="the assistant's voice")
    start.add_argument("--instructions", help="system instructions for the session")
    start.add_argument("--out-format", help="audio format: pcm16, g711_ulaw or g711_alaw")
    command("stop", "Stop the voice session (fine when none runs).")
    say_cmd = command("say", "Send a text turn and print the reply as it streams.")
    say_cmd.add_argument(
        "--wav",
        type=Path,
        metavar="FILE",
        help="also write the assistant's spoken reply to FILE (WAV, 16-bit mono)",
    )
    say_cmd.add_argument("text", nargs="+", help="what to say")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(run(args, sys.stdout))
    except ClientError as exc:
        print(f"rt-probe: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Ctrl-C is an answer, not a crash: end the partly printed line and nothing more.
        sys.stdout.write("\n")
        sys.stdout.flush()
        return INTERRUPTED
