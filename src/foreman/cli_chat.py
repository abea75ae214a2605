"""`foreman chat`, `foreman history` and `foreman mock-chat`: text chat and the shared
history against a running `foreman serve`, through the typed client.

    foreman chat                   interactive: type, read the reply as it streams
    foreman chat "what's on today?"     one turn, printed, then exit
    foreman history list | show ID | export ID --format json|md
    foreman mock-chat --port 9200  a local Chat Completions stand-in (no network, no key)

In the interactive chat: `/voice` starts the desk voice session (typed lines then go to it,
`/text` ends it), `/history` shows the conversation so far, `/help`, Ctrl-D or `/quit` to
leave. While a reply waits for your approval, type `y` or `n`. Ctrl-C stops a reply that
is streaming; at the prompt it leaves. Errors are one line on stderr (exit 1); Ctrl-C
exits 130.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, Final, TextIO

from foreman.cli_history import cmd_history, compact, format_turns, quiet_http
from foreman.client import (
    DEFAULT_URL,
    ApiError,
    ChatApproval,
    ChatDelta,
    ChatDone,
    ChatPiece,
    ChatStart,
    ChatToolResult,
    ChatToolStarted,
    ClientError,
    Delta,
    Done,
    ForemanClient,
    ToolNotice,
)

INTERRUPTED: Final = 130
HELP: Final = (
    "/voice  start talking (the desk voice session; typed lines go to it)\n"
    "/text   end the voice session and chat again\n"
    "/history  the conversation so far\n"
    "/quit   leave (or Ctrl-D)\n"
)
YES: Final = frozenset({"y", "yes", "/approve"})
NO: Final = frozenset({"n", "no", "/deny"})


def register(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add `chat`, `history` and `mock-chat` with `command(name, summary)`, the CLI's
    subcommand factory."""
    server_help = f"server URL (default $FOREMAN_URL or {DEFAULT_URL})"
    chat = command("chat", "Chat by text with a running server (interactive, or one turn).")
    chat.add_argument("text", nargs="*", help="one message: print the reply and exit")
    chat.add_argument("--conversation", metavar="ID", help="continue this conversation")
    chat.add_argument("--server", help=server_help)
    chat.set_defaults(func=cmd_chat)

    history = command("history", "The conversations of chat and voice, with provenance.")
    history.add_argument("--server", help=server_help)
    what = history.add_subparsers(dest="history_command", required=True, metavar="WHAT")
    listing = what.add_parser("list", help="conversations, newest first")
    listing.add_argument("--limit", type=int, default=50)
    show = what.add_parser("show", help="one conversation's turns")
    show.add_argument("id")
    export = what.add_parser("export", help="one conversation as JSON or Markdown")
    export.add_argument("id")
    export.add_argument("--format", choices=("json", "md"), default="json")
    for parser in (listing, show, export):
        parser.add_argument("--server", help=server_help, default=argparse.SUPPRESS)
    history.set_defaults(func=cmd_history)  # in cli_history.py

    mock = command("mock-chat", "Run a local Chat Completions stand-in (for trying chat offline).")
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--port", type=int, default=9200, help="0 picks a free port")
    mock.add_argument("--rules", help="a JSON file of scripted answers")
    mock.set_defaults(func=cmd_mock_chat)


# --- foreman chat ------------------------------------------------------------------------------


def cmd_chat(args: argparse.Namespace) -> int:
    quiet_http(args)
    text = " ".join(args.text).strip()
    try:
        if text:
            return asyncio.run(_one_turn(args.server, text, args.conversation, sys.stdout))
        return asyncio.run(_interactive(args.server, args.conversation, sys.stdout))
    except ClientError as exc:
        print(f"foreman chat: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        sys.stdout.flush()
        return INTERRUPTED


async def _one_turn(server: str | None, text: str, conversation: str | None, out: TextIO) -> int:
    async with ForemanClient(server) as client:
        printer = ReplyPrinter(out, interactive=False)
        async for piece in client.chat_stream(text, conversation):
            printer.show(piece)
        return 0 if printer.done is not None and printer.done.completed else 1


class ReplyPrinter:
    """Prints a streamed chat turn: the reply as it comes, tools and approvals in brackets."""

    def __init__(self, out: TextIO, *, interactive: bool) -> None:
        self.out = out
        self.interactive = interactive
        self.done: ChatDone | None = None
        self.conversation_id: str | None = None
        self.pending: list[ChatApproval] = []
        self._at_line_start = True

    def show(self, piece: ChatPiece) -> None:
        if isinstance(piece, ChatStart):
            self.conversation_id = piece.conversation_id
        elif isinstance(piece, ChatDelta):
            self._write(piece.text)
        elif isinstance(piece, ChatToolStarted):
            self._line(f"[tool: {piece.name} {compact(piece.arguments)}]")
        elif isinstance(piece, ChatApproval):
            self._approval(piece)
        elif isinstance(piece, ChatToolResult):
            self._line(f"[{piece.name}: {'done' if piece.ok else 'not done'}]")
        elif isinstance(piece, ChatDone):
            self.done = piece
            self.conversation_id = piece.conversation_id
            if piece.status == "failed":
                self._line(f"[failed: {piece.error}]")
            elif piece.status == "stopped":
                self._line("[stopped]")
            elif not self._at_line_start:
                self._write("\n")
        self.out.flush()

    def _approval(self, piece: ChatApproval) -> None:
        if piece.state == "pending":
            self.pending.append(piece)
            how = (
                "type y to approve, n to deny"
                if self.interactive
                else f"answer it with POST /api/approval/answer (id {piece.id})"
            )
            self._line(f"[{piece.tool} needs your approval: {how}]")
        else:
            self.pending = [p for p in self.pending if p.id != piece.id]
            self._line(f"[approval of {piece.tool}: {piece.state}]")

    def _line(self, text: str) -> None:
        if not self._at_line_start:
            self._write("\n")
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self._at_line_start = text.endswith("\n")


class Lines:
    """Lines of stdin, read without blocking the loop (a terminal or a pipe is watched by
    the loop; a regular file is read on a worker thread, where it never blocks for long)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._buffer = b""
        self._fd = sys.stdin.fileno()
        self._watched = False
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            loop.add_reader(self._fd, self._readable)
            self._watched = True
        except (PermissionError, OSError, NotImplementedError):
            self._reader = loop.create_task(self._read_file())

    def close(self) -> None:
        if self._watched:
            asyncio.get_running_loop().remove_reader(self._fd)
            self._watched = False

    async def next(self) -> str | None:
        """The next line without its newline; None at the end of input (Ctrl-D)."""
        return await self._queue.get()

    def _readable(self) -> None:
        chunk = os.read(self._fd, 65536)
        if not chunk:
            if self._buffer:
                self._queue.put_nowait(self._buffer.decode(errors="replace"))
            self._queue.put_nowait(None)
            self.close()
            return
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._queue.put_nowait(line.decode(errors="replace"))

    async def _read_file(self) -> None:
        while line := await asyncio.to_thread(sys.stdin.readline):
            self._queue.put_nowait(line.rstrip("\n"))
        self._queue.put_nowait(None)


class ChatSession:
    """The interactive chat's state: the conversation, the mode, the turn in flight."""

    def __init__(self, client: ForemanClient, conversation: str | None, out: TextIO) -> None:
        self.client = client
        self.conversation_id = conversation
        self.out = out
        self.voice = False
        self.turn: asyncio.Task[None] | None = None
        self.printer: ReplyPrinter | None = None
        self.lines = Lines()
        self.ahead: collections.deque[str | None] = collections.deque()  # typed during a turn
        self.prompting = sys.stdin.isatty()

    async def run(self) -> int:
        status = await self.client.realtime_status()  # fails fast when no server answers
        self.voice = status.mode == "voice"
        self.lines.start()
        watcher = asyncio.ensure_future(self._watch_mode())
        loop = asyncio.get_running_loop()
        quit_now = asyncio.Event()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, self._interrupt, quit_now)
        try:
            if self.prompting:
                self.out.write("foreman chat: /help for commands, Ctrl-D to leave\n")
            return await self._loop(quit_now)
        finally:
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
            self.lines.close()

    async def _watch_mode(self) -> None:
        """Follow the server's mode: a voice session ends (end_call, or stopped elsewhere)
        or starts elsewhere, and typed lines go where the owner now talks."""
        with contextlib.suppress(ClientError):
            async for event in self.client.events(["mode"]):
                voice = event.data.get("mode") == "voice"
                if voice != self.voice:
                    self.voice = voice
                    self.out.write(
                        "\n[voice mode: typed lines go to the voice session]\n"
                        if voice
                        else "\n[the voice session ended: back to text]\n"
                    )
                    self._prompt()

    def _interrupt(self, quit_now: asyncio.Event) -> None:
        if self.turn is not None and not self.turn.done():
            self.turn.cancel()  # stop the reply; the prompt comes back
        else:
            quit_now.set()

    async def _loop(self, quit_now: asyncio.Event) -> int:
        while True:
            self._prompt()
            line = await self._next_line(quit_now)
            if line is _QUIT:
                self.out.write("\n")
                return INTERRUPTED
            if line is None:
                if self.prompting:
                    self.out.write("\n")
                return 0
            text = str(line).strip()
            if not text:
                continue
            if text in ("/quit", "/exit"):
                return 0
            await self._command(text) if text.startswith("/") else await self._say(text, quit_now)
            self.out.flush()

    async def _next_line(self, quit_now: asyncio.Event) -> object:
        if self.ahead:
            return self.ahead.popleft()
        reading = asyncio.ensure_future(self.lines.next())
        quitting = asyncio.ensure_future(quit_now.wait())
        await asyncio.wait({reading, quitting}, return_when=asyncio.FIRST_COMPLETED)
        quitting.cancel()
        if reading.done():
            return reading.result()
        reading.cancel()
        return _QUIT

    def _prompt(self) -> None:
        if self.prompting:
            self.out.write("voice> " if self.voice else "you> ")
            self.out.flush()

    async def _command(self, text: str) -> None:
        name = text.split(maxsplit=1)[0]
        if name == "/help":
            self.out.write(HELP)
        elif name == "/history":
            await self._show_history()
        elif name == "/voice":
            status = await self._call(self.client.start_realtime())
            if status is not None:
                self.voice = True
                self.out.write("[voice mode: the desk session is live; /text to end it]\n")
        elif name == "/text":
            await self._call(self.client.stop_realtime())
            self.voice = False
            self.out.write("[text mode]\n")
        else:
            self.out.write(f"[unknown command {name}; /help lists them]\n")

    async def _call(self, work: Any) -> Any:
        try:
            return await work
        except ApiError as exc:
            self.out.write(f"[{exc}]\n")
            return None

    async def _show_history(self) -> None:
        conversation = self.conversation_id
        if conversation is None:
            found = [c for c in await self.client.conversations(20) if c.current]
            if not found:
                self.out.write("[no conversation yet]\n")
                return
            conversation = found[0].id
        detail = await self.client.conversation(conversation)
        self.out.writelines(line + "\n" for line in format_turns(detail.turns))

    async def _say(self, text: str, quit_now: asyncio.Event) -> None:
        if self.voice:
            self.turn = asyncio.ensure_future(self._voice_turn(text))
        else:
            self.printer = ReplyPrinter(self.out, interactive=True)
            self.turn = asyncio.ensure_future(self._chat_turn(text, self.printer))
        try:
            await self._while_turn_runs(quit_now)
        finally:
            self.turn = None

    async def _while_turn_runs(self, quit_now: asyncio.Event) -> None:
        """Wait for the turn. A `y` or `n` typed meanwhile answers its approval prompt;
        other lines wait for their turn after it."""
        assert self.turn is not None
        while not self.turn.done():
            reading = asyncio.ensure_future(self.lines.next())
            await asyncio.wait({self.turn, reading}, return_when=asyncio.FIRST_COMPLETED)
            if not reading.done():
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
                continue
            line = reading.result()
            if line is None:  # input ended: let the reply finish, then leave
                self.ahead.append(None)
                await asyncio.wait({self.turn})
                break
            pending = self.printer.pending if self.printer is not None else []
            word = line.strip().lower()
            if pending and word in YES | NO:
                await self._call(self.client.answer_approval(pending[0].id, word in YES, None))
            else:
                self.ahead.append(line)
        if self.turn.cancelled():
            if self.printer is not None and self.printer.done is None:
                self.out.write("\n[stopped]\n")
            return
        exc = self.turn.exception()
        if isinstance(exc, ClientError):
            self.out.write(f"\n[{exc}]\n")
        elif exc is not None:
            raise exc

    async def _chat_turn(self, text: str, printer: ReplyPrinter) -> None:
        try:
            async for piece in self.client.chat_stream(text, self.conversation_id):
                printer.show(piece)
                if printer.conversation_id is not None:
                    self.conversation_id = printer.conversation_id
        except ApiError as exc:
            if exc.status == 409 and "voice session" in str(exc):
                self.voice = True  # the owner is in voice mode (started elsewhere)
                self.out.write("[voice mode is on: your line goes to the voice session]\n")
                await self._voice_turn(text)
                return
            raise

    async def _voice_turn(self, text: str) -> None:
        try:
            async for piece in self.client.say(text):
                if isinstance(piece, Delta):
                    self.out.write(piece.text)
                elif isinstance(piece, ToolNotice):
                    self.out.write(f"\n[tool: {piece.name}]\n")
                elif isinstance(piece, Done):
                    self.out.write("\n")
                self.out.flush()
        except ApiError as exc:
            if exc.status != 409:
                raise
            self.voice = False  # the voice session has ended: chat again
            self.out.write("[the voice session has ended: back to text]\n")
            await self._chat_turn(text, ReplyPrinter(self.out, interactive=True))


_QUIT: Final = object()


async def _interactive(server: str | None, conversation: str | None, out: TextIO) -> int:
    async with ForemanClient(server) as client:
        return await ChatSession(client, conversation, out).run()


# --- foreman mock-chat ---------------------------------------------------------------------


def cmd_mock_chat(args: argparse.Namespace) -> int:
    from foreman.testing.chat_standin import main as standin_main

    argv = ["--host", args.host, "--port", str(args.port)]
    if args.rules:
        argv += ["--rules", args.rules]
    return standin_main(argv)
