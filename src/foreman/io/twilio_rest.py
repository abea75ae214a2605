"""Async client for the few Twilio REST calls Foreman makes: create and end calls
(https://www.twilio.com/docs/voice/api/call-resource) and send SMS
(https://www.twilio.com/docs/messaging/api/message-resource).

Built on the `twilio` library (`Client` and its `*_async` methods), so resource paths, form
encoding, parameter names and error parsing are Twilio's own. The API host is configurable
(`api_base`) by pointing the library's `api` domain at it, which is how tests and
`foreman.testing.twilio_rest_standin` stand in for api.twilio.com on loopback.

Transport: a small `AsyncHttpClient` on httpx (already a Foreman dependency) instead of the
library's `AsyncTwilioHttpClient`, because the latter (twilio 9.x on aiohttp 3.14) emits two
DeprecationWarnings per request (aiohttp `BasicAuth`, the `auth` parameter, both removed in
aiohttp 4) and does not apply its timeout to requests. Every call is also bounded by
`timeout_s` here. Failures raise `TwilioRestError`: one line, HTTP status and Twilio code,
never the auth token.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

# The call and message resources load lazily on the first request otherwise: a tenth of a
# second (much more on a busy machine) that a hang-up at shutdown should not pay.
import twilio.rest.api.v2010.account  # noqa: F401
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from foreman.exceptions import ForemanError
from foreman.protocols.twilio.twiml import MAX_INLINE_TWIML_CHARS

logger = logging.getLogger(__name__)

# Twilio error 20404, "The requested resource was not found": the call is already over.
CODE_NOT_FOUND = 20404


class TwilioRestError(ForemanError):
    """A Twilio REST request failed. `status` is the HTTP status (0 when none arrived) and
    `code` Twilio's error code when the answer carried one."""

    def __init__(self, message: str, *, status: int = 0, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class HttpxTwilioClient(AsyncHttpClient):  # type: ignore[misc]
    """The twilio library's async HTTP interface on an `httpx.AsyncClient` (pooled)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(logger, True, timeout_s)
        self._http = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

    async def request(  # noqa: PLR0917 - the twilio library's interface
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
        allow_redirects: bool = False,
    ) -> Response:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("> %s %s", method.upper(), uri)  # never the auth header or body
        answer = await self._http.request(
            method.upper(),
            uri,
            params=params,  # type: ignore[arg-type]
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout if timeout is not None else self.timeout,
            follow_redirects=allow_redirects,
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("< %s %s", answer.status_code, uri)
        return Response(answer.status_code, answer.text, answer.headers)

    async def close(self) -> None:
        await self._http.aclose()


class TwilioRest:
    """Hang up, place calls, send SMS. Create once per process; `aclose()` on shutdown."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        api_base: str = "https://api.twilio.com",
        timeout_s: float = 10.0,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("Twilio account_sid and auth_token are required for REST calls")
        self.account_sid = account_sid
        self.api_base = api_base.rstrip("/")
        self.timeout_s = timeout_s
        self._auth_token = auth_token
        self._client: Client | None = None
        self._http: HttpxTwilioClient | None = None

    def __repr__(self) -> str:  # never show the token
        return f"TwilioRest(account_sid={self.account_sid!r}, api_base={self.api_base!r})"

    def _get_client(self) -> Client:
        # Created lazily, inside the running loop that will use it.
        if self._client is None:
            self._http = HttpxTwilioClient(self.timeout_s)
            client = Client(self.account_sid, self._auth_token, http_client=self._http)
            client.edge = None  # ignore TWILIO_EDGE/TWILIO_REGION: api_base is the host
            client.region = None
            client.api.base_url = self.api_base
            self._client = client
        return self._client

    async def _call(self, what: str, coro_factory: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await coro_factory()
        except TimeoutError:
            raise TwilioRestError(f"Twilio {what}: no answer within {self.timeout_s:g} s") from None
        except TwilioRestException as exc:
            raise _error(what, int(exc.status), exc.code, exc.msg) from None
        except TwilioException as exc:  # TwilioServiceException (RFC 9457 errors) and others
            status = int(getattr(exc, "status", 0) or 0)
            code = getattr(exc, "code", None)
            raise _error(
                what, status, code, getattr(exc, "title", "") or type(exc).__name__
            ) from None
        except httpx.TimeoutException:
            raise TwilioRestError(f"Twilio {what}: no answer within {self.timeout_s:g} s") from None
        except (httpx.HTTPError, OSError) as exc:
            reason = " ".join(str(exc).split())[:120] or type(exc).__name__
            raise TwilioRestError(
                f"Twilio {what}: cannot reach {self.api_base}: {reason}"
            ) from None

    async def hangup(self, call_sid: str) -> bool:
        """End a live call (`Status=completed`). True when the call is over, including
        when Twilio says it is already gone (404 / 20404). Raises TwilioRestError otherwise."""
        client = self._get_client()
        try:
            await self._call(
                "hang-up", lambda: client.calls(call_sid).update_async(status="completed")
            )
        except TwilioRestError as exc:
            if exc.status == 404 or exc.code == CODE_NOT_FOUND:
                logger.info("= hang-up of %s: call already gone", call_sid)
                return True
            raise
        return True

    async def create_call(
        self, *, to: str, from_: str, twiml: str, status_callback: str | None = None
    ) -> str:
        """Place an outbound call running the inline `twiml` when answered; returns
        the CallSid. The TwiML should `<Connect><Stream>` back to this server."""
        if len(twiml) > MAX_INLINE_TWIML_CHARS:
            raise ValueError(f"inline TwiML is {len(twiml)} characters; Twilio allows 4000")
        client = self._get_client()
        call = await self._call(
            "create call",
            lambda: client.calls.create_async(
                to=to, from_=from_, twiml=twiml, status_callback=status_callback
            ),
        )
        return str(call.sid)

    async def send_sms(self, *, to: str, from_: str, body: str) -> str:
        """Send an SMS; returns the message sid (`SM…`)."""
        client = self._get_client()
        message = await self._call(
            "send SMS", lambda: client.messages.create_async(to=to, from_=from_, body=body)
        )
        return str(message.sid)

    async def aclose(self) -> None:
        """Close the HTTP connection pool. Safe to call twice."""
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close()


def _error(what: str, status: int, code: Any, message: str) -> TwilioRestError:
    code_int = code if isinstance(code, int) else None
    first_line = " ".join(str(message).split())[:200]
    text = f"Twilio {what} failed: HTTP {status}"
    if code_int is not None:
        text += f" code {code_int}"
    if first_line:
        text += f": {first_line}"
    return TwilioRestError(text, status=status, code=code_int)
