"""`ForemanClient`: the typed, async client of Foreman's HTTP control API (`foreman serve`).

    async with ForemanClient() as foreman:  # $FOREMAN_URL and $FOREMAN_API_TOKEN
        print(await foreman.realtime_status())
        async for piece in foreman.say("hello"):
            ...  # Delta pieces and ToolNotices, then one Done

Endpoints a server may not have yet (text chat, the wake sentinel) are written to their
documented contracts; an older server answers them with ApiError 404.

Results are the frozen records of `foreman.client_types`: fields the server adds later are
ignored (and kept in `.raw`), so an older client keeps working against a newer server.
Every failure is a `ClientError` whose message is one line fit to show a person; the client
never prints, so a TUI and the command-line tools (`rt-probe`, `foreman call`) share it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, cast
from urllib.parse import quote

import httpx
import httpx_sse

from foreman import __version__
from foreman.client_chat_types import (
    ChatApproval,
    ChatDelta,
    ChatDone,
    ChatNote,
    ChatPiece,
    ChatReply,
    ChatStart,
    ChatToolCall,
    ChatToolResult,
    ChatToolStarted,
    Conversation,
    ConversationDetail,
    HistoryTurn,
    read_chat_piece,
)
from foreman.client_types import (
    DEFAULT_URL,
    ApiError,
    ApprovalPrompt,
    Audio,
    AuditEntry,
    CallList,
    ClientError,
    ConnectionFailed,
    Delta,
    Done,
    Event,
    FinishedCall,
    HangUp,
    Health,
    LiveCall,
    PlacedCall,
    RealtimeStatus,
    Record,
    SayPiece,
    ServerUnreachable,
    StartOptions,
    ToolNotice,
    Unauthorized,
    UnexpectedResponse,
    WakeStatus,
    one_line,
    read_say_piece,
)

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "ApprovalPrompt",
    "Audio",
    "AuditEntry",
    "CallList",
    "ChatApproval",
    "ChatDelta",
    "ChatDone",
    "ChatNote",
    "ChatPiece",
    "ChatReply",
    "ChatStart",
    "ChatToolCall",
    "ChatToolResult",
    "ChatToolStarted",
    "ClientError",
    "ConnectionFailed",
    "Conversation",
    "ConversationDetail",
    "Delta",
    "Done",
    "Event",
    "FinishedCall",
    "ForemanClient",
    "HangUp",
    "Health",
    "HistoryTurn",
    "LiveCall",
    "PlacedCall",
    "RealtimeStatus",
    "Record",
    "SayPiece",
    "ServerUnreachable",
    "StartOptions",
    "ToolNotice",
    "Unauthorized",
    "UnexpectedResponse",
    "WakeStatus",
]


class ForemanClient:
    """One connection pool to one Foreman server. Use as `async with`, or call `aclose()`.

    `base_url` defaults to `$FOREMAN_URL` (else `DEFAULT_URL`), `token` to
    `$FOREMAN_API_TOKEN` (pass "" to send none). `timeout` bounds connecting, sending and
    each plain request; a stream (`say`, `events`) may stay quiet for as long as the server
    needs (a turn can wait minutes for an approval), so cancel it to give up.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url = (base_url or os.environ.get("FOREMAN_URL") or DEFAULT_URL).rstrip("/")
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ClientError(f"not a foreman server URL: {url!r} (expected http://HOST:PORT)")
        self.base_url = url
        token = os.environ.get("FOREMAN_API_TOKEN", "") if token is None else token
        self._sends_token = bool(token)
        headers = {"User-Agent": f"foreman-client/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=url, headers=headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> ForemanClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the API ------------------------------------------------------------------------------
    async def health(self) -> Health:
        """Answers without a token; use it to check the URL."""
        return Health.from_json(await self._request("GET", "/api/health"))

    async def realtime_status(self) -> RealtimeStatus:
        return RealtimeStatus.from_json(await self._request("GET", "/api/realtime/status"))

    async def start_realtime(self, options: StartOptions | None = None) -> RealtimeStatus:
        """Start the voice session. ApiError 409 if one runs, 400 if the request cannot work,
        502 if the model endpoint failed (its reason is in the message)."""
        body = (options or StartOptions()).to_json()
        return RealtimeStatus.from_json(
            await self._request("POST", "/api/realtime/start", json=body)
        )

    async def stop_realtime(self) -> RealtimeStatus:
        """Stop the voice session; stopping a stopped session is fine."""
        return RealtimeStatus.from_json(await self._request("POST", "/api/realtime/stop"))

    async def say(self, text: str, *, audio: bool = False) -> AsyncIterator[SayPiece]:
        """Send a user text turn; yield the reply as it streams: `Delta` and `ToolNotice`
        pieces (and `Audio` pieces of the spoken reply when `audio` is true), then exactly
        one `Done` (whose `error` is set if the session ended). Pieces of kinds this client
        does not know are skipped. ApiError 409 when no session runs or a turn is running.

        To stop early, close the iterator (`contextlib.aclosing`): that ends the request."""
        body: dict[str, Any] = {"text": text, **({"audio": True} if audio else {})}
        async with self._stream("POST", "/api/realtime/say", json=body) as resp:
            async for line in resp.aiter_lines():
                piece = read_say_piece(line)
                if piece is not None:
                    yield piece
                    if isinstance(piece, Done):
                        return
        raise ConnectionFailed(f"foreman at {self.base_url} ended the reply before it was done")

    async def approvals(self) -> list[ApprovalPrompt]:
        """Prompts waiting for an answer, oldest first."""
        data = await self._request("GET", "/api/approval/prompt")
        return [ApprovalPrompt.from_json(p) for p in _list(data, "prompts")]

    async def answer_approval(
        self, approval_id: str, approve: bool, note: str | None = None
    ) -> ApprovalPrompt:
        """Approve (the tool runs) or deny a prompt; `note` is shown to the model.
        ApiError 404 for an unknown id, 409 when it is no longer pending."""
        body: dict[str, Any] = {"id": approval_id, "approve": approve}
        if note is not None:
            body["note"] = note
        data = await self._request("POST", "/api/approval/answer", json=body)
        return ApprovalPrompt.from_json(data.get("approval"))

    async def audit(self, limit: int = 100, session_id: str | None = None) -> list[AuditEntry]:
        """Tool decisions, newest first."""
        params: dict[str, Any] = {"limit": limit}
        if session_id is not None:
            params["session_id"] = session_id
        data = await self._request("GET", "/api/audit", params=params)
        return [AuditEntry.from_json(r) for r in _list(data, "records")]

    async def calls(self) -> CallList:
        """Live phone calls and the most recent finished ones."""
        return CallList.from_json(await self._request("GET", "/api/calls"))

    async def place_call(self, to: str, purpose: str | None = None) -> PlacedCall:
        """Call `to` (E.164) through Twilio; ApiError 400 when Twilio is not configured."""
        body = {"to": to, **({"purpose": purpose} if purpose else {})}
        return PlacedCall.from_json(await self._request("POST", "/api/calls", json=body))

    async def hang_up_call(self, call_sid: str) -> HangUp:
        """End a live call now. ApiError 404 when no call with that sid is live (or the
        server cannot hang up calls)."""
        return HangUp.from_json(await self._request("POST", f"/api/calls/{call_sid}/hangup"))

    async def chat(self, message: str, conversation_id: str | None = None) -> ChatReply:
        """One chat turn, answered when the reply is complete (a tool call that needs the
        owner's approval waits for it). Without `conversation_id` the owner's current
        conversation continues. ApiError 409 when that conversation is busy (a turn runs,
        or a voice session writes into it), 400 when chat is not configured, 502 when the
        model failed."""
        body = _chat_body(message, conversation_id)
        timeout = httpx.Timeout(self._timeout, read=None)  # approvals can take minutes
        return ChatReply.from_json(
            await self._request("POST", "/api/chat", json=body, timeout=timeout)
        )

    async def chat_stream(
        self, message: str, conversation_id: str | None = None
    ) -> AsyncIterator[ChatPiece]:
        """The same turn as it streams: `ChatStart`, then `ChatDelta`, `ChatToolStarted`,
        `ChatNote`, `ChatApproval`, `ChatToolResult` pieces, then exactly one `ChatDone`.
        Closing the iterator early stops the turn on the server."""
        body = _chat_body(message, conversation_id)
        headers = {"Accept": "text/event-stream"}
        async with self._stream("POST", "/api/chat/stream", json=body, headers=headers) as resp:
            try:
                async for sse in httpx_sse.EventSource(resp).aiter_sse():
                    piece = read_chat_piece(sse.event, sse.data)
                    if piece is not None:
                        yield piece
                        if isinstance(piece, ChatDone):
                            return
            except httpx_sse.SSEError as exc:
                raise UnexpectedResponse(f"chat: {one_line(str(exc))}") from None
        raise ConnectionFailed(f"foreman at {self.base_url} ended the reply before it was done")

    async def conversations(self, limit: int = 50) -> list[Conversation]:
        """The history's conversations, newest activity first."""
        data = await self._request("GET", "/api/history", params={"limit": limit})
        return [Conversation.from_json(c) for c in _list(data, "conversations")]

    async def conversation(self, conversation_id: str, *, after: int = 0) -> ConversationDetail:
        """One conversation with its turns (those after `after`), oldest first. ApiError
        404 for an unknown id."""
        path = f"/api/history/{quote(conversation_id, safe='')}"
        params = {"after": after} if after else None
        return ConversationDetail.from_json(await self._request("GET", path, params=params))

    async def events(
        self,
        kinds: Sequence[str] | None = None,
        *,
        on_open: Callable[[], object] | None = None,
    ) -> AsyncIterator[Event]:
        """Everything on the server's event bus as it happens, until the server closes the
        stream. `kinds` are prefixes (`"approval."` keeps approval events only). A reader
        that falls behind gets an `events.dropped` event saying how many it lost.

        `on_open` is called once the server has subscribed this stream (its first bytes
        arrived): state read after that misses nothing, whatever happens next comes here."""
        params = {"kind": list(kinds)} if kinds else None
        headers = {"Accept": "text/event-stream"}
        async with self._stream("GET", "/api/events", params=params, headers=headers) as resp:
            source = _OnFirstBytes(resp, on_open) if on_open is not None else resp
            try:
                async for sse in httpx_sse.EventSource(cast(httpx.Response, source)).aiter_sse():
                    yield Event.from_json(_json(sse.data, "event"))
            except httpx_sse.SSEError as exc:
                raise UnexpectedResponse(f"events: {one_line(str(exc))}") from None

    # --- text chat ------------------------------------------------------------------------
    # --- the wake sentinel --------------------------------------------------------------------
    async def wake_status(self) -> WakeStatus:
        """ApiError 404 when the server has no wake sentinel."""
        return WakeStatus.from_json(await self._request("GET", "/api/wake/status"))

    async def enable_wake(self) -> WakeStatus:
        return await self._wake_switch("enable")

    async def disable_wake(self) -> WakeStatus:
        return await self._wake_switch("disable")

    async def _wake_switch(self, verb: str) -> WakeStatus:
        data = await self._request("POST", f"/api/wake/{verb}")
        # The answer may be the status itself or carry it under "wake"; re-read otherwise.
        for candidate in (data, data.get("wake")):
            if isinstance(candidate, Mapping) and "enabled" in candidate:
                return WakeStatus.from_json(candidate)
        return await self.wake_status()

    # --- plumbing -------------------------------------------------------------------------
    async def _request(self, method: str, path: str, **kwargs: Any) -> Mapping[str, Any]:
        try:
            resp = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._connection_error(exc) from None
        if resp.status_code >= 400:
            raise self._api_error(resp)
        data = _json(resp.text, path)
        if not isinstance(data, Mapping):
            raise UnexpectedResponse(f"{path}: expected a JSON object")
        return data

    @contextlib.asynccontextmanager
    async def _stream(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        # No read timeout once streaming: a turn may wait minutes for an approval, and the
        # event stream is quiet between pings.
        timeout = httpx.Timeout(self._timeout, read=None)
        try:
            async with self._http.stream(method, path, timeout=timeout, **kwargs) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise self._api_error(resp)
                yield resp
        except httpx.HTTPError as exc:
            raise self._connection_error(exc) from None

    def _connection_error(self, exc: httpx.HTTPError) -> ConnectionFailed:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return ServerUnreachable(self.base_url)
        if isinstance(exc, httpx.TimeoutException):
            return ConnectionFailed(
                f"foreman at {self.base_url} did not answer within {self._timeout:g} s"
            )
        reason = one_line(str(exc)) or type(exc).__name__
        return ConnectionFailed(f"lost the connection to foreman at {self.base_url}: {reason}")

    def _api_error(self, resp: httpx.Response) -> ApiError:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping) and "detail" in body:
            detail = body["detail"]
        else:
            detail = one_line(resp.text, 200) or resp.reason_phrase
        if resp.status_code == 401:
            hint = (
                "refused the API token: set FOREMAN_API_TOKEN to the server's [server] api_token"
                if self._sends_token
                else "needs an API token: set FOREMAN_API_TOKEN"
            )
            return Unauthorized(401, detail, f"HTTP 401: foreman at {self.base_url} {hint}")
        return ApiError(resp.status_code, detail)


class _OnFirstBytes:
    """A streaming response as `httpx_sse.EventSource` reads it (headers, text), calling
    `on_open` when the first text arrives: the server writes a comment as soon as it has
    subscribed the stream, before any event."""

    def __init__(self, resp: httpx.Response, on_open: Callable[[], object]) -> None:
        self._resp = resp
        self._on_open: Callable[[], object] | None = on_open

    @property
    def headers(self) -> httpx.Headers:
        return self._resp.headers

    async def aiter_text(self) -> AsyncIterator[str]:
        async for text in self._resp.aiter_text():
            if self._on_open is not None:
                on_open, self._on_open = self._on_open, None
                on_open()
            yield text


def _chat_body(message: str, conversation_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if conversation_id is not None:
        body["conversation_id"] = conversation_id
    return body


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise UnexpectedResponse(f"{what}: not JSON: {one_line(text, 60)!r}") from None


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise UnexpectedResponse(f"expected a list in {key!r}")
    return value
