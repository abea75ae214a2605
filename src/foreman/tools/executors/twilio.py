"""place_call and send_sms through Twilio REST (`foreman.io.twilio_rest.TwilioRest`).

The client is created on first use from `[twilio]` (so a server without Twilio settings
still starts; the tool then answers "Twilio is not configured"). Tests and the integrator
may pass their own `client` and `call_twiml`.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any, Protocol

from foreman.config import TwilioConfig
from foreman.exceptions import ForemanError, ToolError
from foreman.tools.executors.base import Invocation


class TwilioClient(Protocol):
    async def create_call(
        self, *, to: str, from_: str, twiml: str, status_callback: str | None = None
    ) -> str: ...

    async def send_sms(self, *, to: str, from_: str, body: str) -> str: ...


def redirect_twiml(config: TwilioConfig, purpose: str) -> str:
    """TwiML for an outbound call: Twilio fetches our signed voice webhook, which answers
    with the media stream (and a fresh single-use stream token) like an inbound call."""
    url = config.public_url.rstrip("/") + "/twilio/voice"
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Redirect method="POST">{html.escape(url)}</Redirect></Response>'
    )


class TwilioExecutors:
    def __init__(
        self,
        config: TwilioConfig,
        *,
        client: TwilioClient | None = None,
        call_twiml: Callable[[TwilioConfig, str], str] = redirect_twiml,
    ) -> None:
        self._config = config
        self._client = client
        self._owns_client = client is None
        self._call_twiml = call_twiml

    def _get_client(self) -> TwilioClient:
        if self._client is None:
            if not self._config.account_sid or not self._config.auth_token:
                raise ToolError("Twilio is not configured (twilio.account_sid, auth_token)")
            from foreman.io.twilio_rest import TwilioRest

            self._client = TwilioRest(
                self._config.account_sid,
                self._config.auth_token.get_secret_value(),
                api_base=self._config.api_base,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the REST client's connection pool if this object created it."""
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()  # type: ignore[attr-defined]

    def _from(self) -> str:
        if not self._config.from_number:
            raise ToolError("Twilio has no caller id (twilio.from_number)")
        return self._config.from_number

    async def send_sms(self, args: dict[str, Any], inv: Invocation) -> dict[str, Any]:
        try:
            sid = await self._get_client().send_sms(
                to=args["to"], from_=self._from(), body=args["body"]
            )
        except ForemanError as exc:  # TwilioRestError: one line, never the token
            if isinstance(exc, ToolError):
                raise
            raise ToolError(str(exc)) from None
        return {"status": "sent", "to": args["to"], "sid": sid}

    async def place_call(self, args: dict[str, Any], inv: Invocation) -> dict[str, Any]:
        if not self._config.public_url:
            raise ToolError("twilio.public_url is not set, so the call cannot stream back")
        twiml = self._call_twiml(self._config, str(args.get("purpose", "")))
        try:
            sid = await self._get_client().create_call(
                to=args["to"], from_=self._from(), twiml=twiml
            )
        except ForemanError as exc:
            if isinstance(exc, ToolError):
                raise
            raise ToolError(str(exc)) from None
        return {"status": "calling", "to": args["to"], "sid": sid}
