"""`foreman fake-call`: a phone call without a phone.

Calls a running `foreman serve` the way Twilio does (the signed voice webhook, then the signed
media WebSocket: https://www.twilio.com/docs/voice/media-streams/websocket-messages), says a
sentence, listens to the assistant, hangs up and prints one line:

    call CA…: heard 4.1 s of the assistant; the server recorded: caller hung up

It signs with the settings `foreman serve` uses (`[twilio] auth_token` or TWILIO_AUTH_TOKEN,
and `public_url`, from `--config` or the default config file), so give both the same
configuration. Exit status: 0 when the assistant answered, 1 when the call failed or the
assistant did not answer, 2 for a setting to fix.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foreman.exceptions import ForemanError

# Every `foreman` command builds the parser that registers this one: the call's machinery
# (numpy, websockets, the fake caller) is imported when a call is made, not before.
if TYPE_CHECKING:
    from foreman.client import ForemanClient
    from foreman.config import Settings
    from foreman.testing.fake_call import ConversationResult
    from foreman.testing.fake_twilio import WebhookRefused

__all__ = ["register"]

PHONE_RATE = 8000
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
DEFAULT_FROM = "+15005550006"  # a number Twilio reserves for tests
RECORD_WAIT_S = 10.0  # for the server to write the call's record after the hang-up
CONNECT_TIMEOUT_S = 10.0


class FakeCallProblem(ForemanError):
    """The call cannot be made or failed; the message is what to show, `exit_code` the status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def register(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add `fake-call` with `command(name, summary)`, the CLI's subcommand factory."""
    parser = command(
        "fake-call",
        "Call a running server as Twilio would, say something, record the answer.",
    )
    speech = parser.add_mutually_exclusive_group()
    speech.add_argument("--wav", metavar="FILE", type=Path, help="what the caller says (a WAV)")
    speech.add_argument(
        "--say", metavar="TEXT", help="what the caller says, spoken by espeak-ng or flite"
    )
    parser.add_argument(
        "--record", metavar="OUT.wav", type=Path, help="write what the assistant said (WAV)"
    )
    parser.add_argument(
        "--from",
        dest="from_number",
        metavar="NUMBER",
        type=_e164,
        default=DEFAULT_FROM,
        help=f"the caller's number, E.164 (default {DEFAULT_FROM}, an unknown caller)",
    )
    parser.add_argument(
        "--server",
        metavar="URL",
        help="the server's URL (default $FOREMAN_URL, else [server] host and port)",
    )
    parser.set_defaults(func=cmd_fake_call)


def cmd_fake_call(args: argparse.Namespace) -> int:
    from foreman.audio.g711 import ulaw_to_pcm16
    from foreman.audio.wav import write_wav
    from foreman.config import load_settings

    if args.log_level != "debug":  # one line per request would bury the call's summary
        logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = load_settings(args.config) if args.config else load_settings()
    try:
        speech = _speech(args)
        if args.record is not None and not args.record.parent.is_dir():
            raise FakeCallProblem(f"cannot write {args.record}: no such folder", 2)
        result, reason = asyncio.run(_call(settings, _server_url(args, settings), args, speech))
    except FakeCallProblem as exc:
        print(f"foreman fake-call: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.record is not None:
        args.record.write_bytes(write_wav(ulaw_to_pcm16(result.heard), PHONE_RATE))
    print(_summary(result, reason, args.record))
    local = settings.twilio.public_url.startswith("http://")
    for objection in result.objections:
        if not (local and objection.startswith("stream URL scheme")):  # expected on http
            print(f"foreman fake-call: Twilio would object: {objection}", file=sys.stderr)
    if not result.answered:
        why = (
            f"the server ended the call, WebSocket close code {result.close_code}"
            if result.ended_by_server
            else "it said nothing after the caller spoke"
        )
        print(f"foreman fake-call: the assistant did not answer ({why})", file=sys.stderr)
        return 1
    return 0


def _speech(args: argparse.Namespace) -> bytes:
    """What the caller says, as PCM16 at the phone's 8 kHz."""
    from foreman.audio.wav import read_wav, resample_pcm16
    from foreman.exceptions import AudioFormatError
    from foreman.testing.speech import SpeechUnavailable, caller_sentence, speak

    if args.wav is not None:
        try:
            pcm, rate = read_wav(args.wav.read_bytes())
        except OSError as exc:
            raise FakeCallProblem(f"cannot read {args.wav}: {exc.strerror or exc}", 2) from None
        except AudioFormatError as exc:
            raise FakeCallProblem(f"{args.wav}: {exc}", 2) from None
        return resample_pcm16(pcm, rate, PHONE_RATE)
    if args.say is not None:
        try:
            return speak(args.say, PHONE_RATE)
        except SpeechUnavailable:
            raise FakeCallProblem(
                "--say needs espeak-ng or flite installed; or record the sentence and pass "
                "--wav FILE",
                2,
            ) from None
    return caller_sentence(PHONE_RATE)


def _server_url(args: argparse.Namespace, settings: Settings) -> str:
    if args.server:
        return str(args.server).rstrip("/")
    if os.environ.get("FOREMAN_URL"):
        return os.environ["FOREMAN_URL"].rstrip("/")
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: this machine is one of them
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port}"


async def _call(
    settings: Settings, server: str, args: argparse.Namespace, speech: bytes
) -> tuple[ConversationResult, str]:
    import httpx
    from websockets.exceptions import InvalidStatus

    from foreman.client import ForemanClient
    from foreman.testing.fake_call import converse
    from foreman.testing.fake_twilio import FakeCallError, FakeTwilioCaller, WebhookRefused

    tw = settings.twilio
    caller = FakeTwilioCaller(
        server_http=server,
        # With no public URL the server refuses the call (503) and says so; sign for the
        # address we call meanwhile, so that refusal is what the user sees.
        public_url=tw.public_url or server,
        auth_token=tw.auth_token.get_secret_value(),
        from_=args.from_number,
        continuous_silence=True,  # like Twilio: the line carries silence between words
    )
    api_token = settings.server.api_token.get_secret_value() or None
    async with ForemanClient(server, token=api_token, timeout=CONNECT_TIMEOUT_S) as client:
        records = _RecordWatch(client, caller.call_sid)
        try:
            result = await converse(caller, speech)
        except BaseException as exc:
            await records.stop()
            if isinstance(exc, WebhookRefused):
                raise _refusal(exc, server) from None
            if isinstance(exc, InvalidStatus):
                raise FakeCallProblem(
                    f"the server refused the media socket (HTTP {exc.response.status_code}); "
                    "its log says why"
                ) from None
            if isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
                raise FakeCallProblem(
                    f"cannot reach foreman at {server} (is `foreman serve` running?)"
                ) from None
            if isinstance(exc, httpx.HTTPError | OSError | FakeCallError):
                raise FakeCallProblem(f"the call failed: {exc}") from None
            raise
        return result, await records.reason()


def _refusal(exc: WebhookRefused, server: str) -> FakeCallProblem:
    said = " ".join(exc.text.split())[:300]
    if exc.status == 503:
        return FakeCallProblem(
            f"the server answered 503: {said}\n"
            "To call a server on this machine without Twilio, give `foreman serve` and "
            "`foreman fake-call` the same settings, e.g. in a file foreman-local.toml:\n"
            "  [twilio]\n"
            f'  public_url = "{server}"\n'
            '  auth_token = "any-local-secret"\n'
            "then run `foreman serve --config foreman-local.toml` and "
            "`foreman fake-call --config foreman-local.toml` (docs/phone.md).",
            2,
        )
    if exc.status == 403:
        return FakeCallProblem(
            f"the server refused the call's signature (403: {said}): fake-call signs with "
            "[twilio] auth_token and public_url from its own settings; give it the same "
            "--config (and TWILIO_AUTH_TOKEN) as `foreman serve`",
            2,
        )
    return FakeCallProblem(f"the voice webhook answered {exc.status}: {said}")


class _RecordWatch:
    """Follows the server's event stream from before the call, for the record it writes
    when the call ends (`call.recorded`) or the reason it refused the stream
    (`call.refused`); falls back to `GET /api/calls`."""

    def __init__(self, client: ForemanClient, call_sid: str) -> None:
        self._client = client
        self._call_sid = call_sid
        self._problem: str | None = None
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> Mapping[str, Any]:
        from foreman.client import ClientError

        try:
            async for event in self._client.events(["call.recorded", "call.refused"]):
                if event.data.get("call_sid") == self._call_sid:
                    return event.data
        except ClientError as exc:
            self._problem = str(exc)
        return {}

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def reason(self) -> str:
        """The reason the server recorded, or why it is not known."""
        from foreman.client import ClientError

        record: Mapping[str, Any] = {}
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RECORD_WAIT_S):
                record = await asyncio.shield(self._task)
        await self.stop()
        if not record:
            with contextlib.suppress(ClientError):
                calls = await self._client.calls()
                record = next((c.raw for c in calls.recent if c.call_sid == self._call_sid), {})
        if record:
            return str(record.get("reason") or "ended")
        return f"no record yet ({self._problem})" if self._problem else "no record yet"


def _summary(result: ConversationResult, reason: str, record: Path | None) -> str:
    line = f"call {result.call_sid}: heard {result.heard_s:.1f} s of the assistant"
    line += f"; the server recorded: {reason}"
    if record is not None:
        line += f"; saved {record}"
    return line


def _e164(text: str) -> str:
    if not E164.match(text):
        raise argparse.ArgumentTypeError(f"not an E.164 number (like +14155550123): {text!r}")
    return text
