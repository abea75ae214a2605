"""The mock Realtime WebSocket server (GA protocol) on `websockets.asyncio.server`.

Connection rules, as the live service behaves
(https://developers.openai.com/api/docs/guides/realtime-websocket, and observed on the live
service, 2026-09):

* path `/v1/realtime`, anything else answers HTTP 404;
* with `api_key` set, a handshake without `Authorization: Bearer <api_key>` answers HTTP 401
  (`auth_rejection="http"`, the default), or, like the live service, upgrades and then sends
  `error` `invalid_api_key` and closes with 3000 (`auth_rejection="close"`);
* an `OpenAI-Beta` header gets `error` `beta_api_shape_disabled` and close code 4000;
* no `model` query parameter gets `error` `missing_model` and close code 4000;
* otherwise `session.created` is the first event.

The same server answers GPT-Live on `/v1/live/sessions` (no query parameters; the client
sends `session.start` first): see `foreman.testing.mock_realtime.live`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from foreman.io.redact import redacting_logger
from foreman.testing.mock_realtime import errors as E
from foreman.testing.mock_realtime.faults import Faults, as_error_event
from foreman.testing.mock_realtime.live import LiveMockSession
from foreman.testing.mock_realtime.live.faults import LiveFaults
from foreman.testing.mock_realtime.scenario import Scenario
from foreman.testing.mock_realtime.session import MockSession

PATH = "/v1/realtime"
LIVE_PATH = "/v1/live/sessions"
Predicate = Callable[[dict[str, Any]], bool]
T = TypeVar("T")


class MockRealtimeServer:
    """A scriptable GA Realtime server for tests and local runs.

    Start it (`await start()` or `async with`), point the client at `url`, then use
    `wait_for_session()` / `wait_for_client_event()` to follow what the client does and
    `inject()` to push server events. `scenario` may be replaced at any time; it is read when a
    response starts.
    """

    def __init__(
        self,
        scenario: Scenario | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        api_key: str | None = None,
        auth_rejection: Literal["http", "close"] = "http",
    ) -> None:
        self.scenario = scenario if scenario is not None else Scenario()
        self.host = host
        self.port = port
        self.faults = faults if faults is not None else Faults()
        self.api_key = api_key
        self.auth_rejection = auth_rejection
        self.sessions: list[MockSession] = []
        self.responses_started = 0  # server-wide, for the stall_responses fault
        self.turns_committed = 0  # server-wide, for the ignore_turns fault
        self.live_sessions: list[LiveMockSession] = []
        self.live_audio_turns = 0  # server-wide: a scenario's turn n goes on after a reconnect
        self._server: Server | None = None
        self._cond = asyncio.Condition()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            max_size=None,
            compression=None,
            logger=redacting_logger("foreman.testing.mock_realtime.wire"),  # keys in handshakes
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        for session in self.sessions:
            if session.frozen:  # deaf to a close handshake: do not wait for its timeout
                session.abort()
        for live in self.live_sessions:
            if live.frozen:
                live.abort()
        server.close(close_connections=True)
        await server.wait_closed()

    async def __aenter__(self) -> MockRealtimeServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{PATH}"

    @property
    def live_url(self) -> str:
        return f"ws://{self.host}:{self.port}{LIVE_PATH}"

    async def wait_for_live_session(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 - a timeout is the API
        *,
        index: int = 0,
    ) -> LiveMockSession:
        """The `index`-th GPT-Live session, once it has started (`session.started` sent)."""
        return await self._wait(
            lambda: (
                self.live_sessions[index]
                if len(self.live_sessions) > index and self.live_sessions[index].config
                else None
            ),
            timeout,
            lambda: f"live session #{index} ({len(self.live_sessions)} so far)",
        )

    async def wait_for_live(
        self,
        found: Callable[[], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109 - a timeout is the API
        what: str = "a condition on the live sessions",
    ) -> T:
        """Wait until `found()` returns something (checked whenever a live event passes)."""
        return await self._wait(found, timeout, lambda: what)

    # --- observing and steering ------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def _wait(
        self,
        found: Callable[[], T | None],
        timeout: float,  # noqa: ASYNC109 - a timeout is the API
        what: Callable[[], str],
    ) -> T:
        try:
            async with asyncio.timeout(timeout):
                async with self._cond:
                    await self._cond.wait_for(lambda: found() is not None)
        except TimeoutError:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what()}") from None
        result = found()
        assert result is not None
        return result

    async def wait_for_session(self, timeout: float = 5.0, *, index: int = 0) -> MockSession:  # noqa: ASYNC109 - a timeout is the API
        """The `index`-th session (0 = first connection), once it exists."""
        return await self._wait(
            lambda: self.sessions[index] if len(self.sessions) > index else None,
            timeout,
            lambda: f"session #{index} ({len(self.sessions)} so far)",
        )

    async def wait_for_client_event(
        self,
        type: str,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a timeout is the API
        predicate: Predicate | None = None,
        session: MockSession | None = None,
    ) -> dict[str, Any]:
        """The `count`-th client event of `type` (matching `predicate`), across sessions unless
        `session` is given. Raises TimeoutError listing what did arrive."""
        return await self._wait(
            lambda: self._nth(lambda s: s.received, type, count, predicate, session),
            timeout,
            lambda: (
                f"client event {type!r} #{count}; received: {self._types(lambda s: s.received)}"
            ),
        )

    async def wait_for_server_event(
        self,
        type: str,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a timeout is the API
        predicate: Predicate | None = None,
        session: MockSession | None = None,
    ) -> dict[str, Any]:
        """The `count`-th server event of `type` the mock has sent (same rules as above)."""
        return await self._wait(
            lambda: self._nth(lambda s: s.sent, type, count, predicate, session),
            timeout,
            lambda: f"server event {type!r} #{count}; sent: {self._types(lambda s: s.sent)}",
        )

    def _nth(
        self,
        log: Callable[[MockSession], list[dict[str, Any]]],
        type: str,
        count: int,
        predicate: Predicate | None,
        session: MockSession | None,
    ) -> dict[str, Any] | None:
        seen = 0
        for s in [session] if session is not None else list(self.sessions):
            for ev in log(s):
                if ev.get("type") == type and (predicate is None or predicate(ev)):
                    seen += 1
                    if seen == count:
                        return ev
        return None

    def _types(self, log: Callable[[MockSession], list[dict[str, Any]]]) -> list[str]:
        return [str(e.get("type")) for s in self.sessions for e in log(s)][-30:]

    async def inject(self, event: dict[str, Any], session: MockSession | None = None) -> None:
        """Send an arbitrary server event (an `event_id` is added) to `session` (default: the
        most recent one)."""
        target = session if session is not None else (self.sessions[-1] if self.sessions else None)
        if target is None:
            raise RuntimeError("no session to inject into: no client has connected")
        await target.send(dict(event))

    # --- connections -----------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path not in (PATH, LIVE_PATH):
            return connection.respond(
                HTTPStatus.NOT_FOUND, f"Not found: use {PATH} or {LIVE_PATH}\n"
            )
        if (
            self.api_key is not None
            and self.auth_rejection == "http"
            and not self._authorized(request)
        ):
            body = {"error": E.invalid_api_key()}
            response = connection.respond(HTTPStatus.UNAUTHORIZED, json.dumps(body) + "\n")
            response.headers["Content-Type"] = "application/json"
            return response
        return None

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        if urlsplit(request.path).path == LIVE_PATH:
            await self._handle_live(ws, request)
            return
        query = parse_qs(urlsplit(request.path).query)
        model = (query.get("model") or [""])[0]
        transport = ws.transport

        async def send_raw(text: str) -> None:
            await ws.send(text)

        session = MockSession(
            self,
            model,
            send_raw,
            transport.close,
            self.faults,
            connection=len(self.sessions),
            freeze=transport.pause_reading,
        )
        session.handshake_headers = {k.lower(): v for k, v in request.headers.raw_items()}
        session.abort = transport.abort
        self.sessions.append(session)
        await self._notify()
        expiry: asyncio.Task[None] | None = None
        try:
            refusal = self._refusal(request, model)
            if refusal is not None:
                code, body = refusal
                await session.send({"type": "error", "error": body})
                await ws.close(code, f"{body['type']}.{body['code']}")
                return
            await session.send({"type": "session.created", "session": dict(session.config)})
            for payload in self.faults.error_events:
                await session.send(as_error_event(payload))
            if self.faults.session_time_limit_s is not None:
                expiry = asyncio.create_task(
                    self._expire(ws, session, self.faults.session_time_limit_s)
                )
            async for message in ws:
                if isinstance(message, bytes):
                    await session.handle_binary()
                else:
                    await session.handle_text(message)
        except ConnectionClosed:
            pass
        finally:
            if expiry is not None:
                expiry.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await expiry
            await session.shutdown()
            await self._notify()

    async def _handle_live(self, ws: ServerConnection, request: Request) -> None:
        async def send_raw(text: str) -> None:
            await ws.send(text)

        session = LiveMockSession(self, send_raw, ws.close)
        session.handshake_headers = {k.lower(): v for k, v in request.headers.raw_items()}
        session.faults = LiveFaults.of(self.faults, len(self.live_sessions))
        session.abort, session.pause_reading = ws.transport.abort, ws.transport.pause_reading
        self.live_sessions.append(session)
        await self._notify()
        try:
            if self.api_key is not None and not self._authorized(request):
                await session.send_error(E.invalid_api_key(), None)
                await ws.close(3000, "invalid_api_key")
                return
            async for message in ws:
                if isinstance(message, bytes):
                    await session.send_error(E.binary_frame(), None)
                else:
                    await session.handle_text(message)
        except ConnectionClosed:
            pass
        finally:
            await session.shutdown()
            await self._notify()

    def _refusal(self, request: Request, model: str) -> tuple[int, E.ErrorBody] | None:
        if self.api_key is not None and not self._authorized(request):
            return 3000, E.invalid_api_key()
        if "OpenAI-Beta" in request.headers:
            return 4000, E.beta_disabled()
        if not model:
            return 4000, E.missing_model()
        return None

    async def _expire(self, ws: ServerConnection, session: MockSession, after: float) -> None:
        await asyncio.sleep(after)
        await session.send({"type": "error", "error": E.session_expired()})
        # The service closes right after the error; 1000 with the error as the reason.
        await ws.close(1000, "invalid_request_error.session_expired")
