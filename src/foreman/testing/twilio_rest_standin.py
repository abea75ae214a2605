"""A loopback stand-in for the Twilio REST API (2010-04-01), for tests and local runs.

Serves the three endpoints Foreman uses (https://www.twilio.com/docs/voice/api/call-resource,
https://www.twilio.com/docs/messaging/api/message-resource) on `127.0.0.1:<free port>`:

    POST /2010-04-01/Accounts/{AccountSid}/Calls.json         create a call     -> 201
    POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json update/hang up  -> 200 | 404 20404
    POST /2010-04-01/Accounts/{AccountSid}/Messages.json      send an SMS       -> 201

It checks HTTP basic auth (`AccountSid:AuthToken`, 401 code 20003 otherwise) and the form
fields Twilio requires (400 with Twilio-style JSON `{code, message, more_info, status}`),
and records what it received. Point `TwilioRest(api_base=standin.base_url)` at it.

    async with TwilioRestStandIn(sid, token) as standin:
        ...
        (call,) = await standin.wait_for("call")
        await standin.wait_for("hangup")
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import Callable, Coroutine
from email.utils import formatdate
from typing import Any, Literal

from foreman.protocols.twilio.caller import new_sid

try:
    from aiohttp import web
except ImportError as exc:  # an optional extra: say how to get it
    raise ImportError(
        "the Twilio REST stand-in needs aiohttp: install Foreman with its 'testing' extra"
    ) from exc

__all__ = ["TwilioRestStandIn", "new_sid"]

Kind = Literal["call", "message", "hangup"]
HangupHook = Callable[[], Coroutine[Any, Any, None]]

API = "/2010-04-01/Accounts/{account}"


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )


class TwilioRestStandIn:
    """Records `calls`, `messages`, `hangups` (call sids) and every request in `requests`."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.base_url = ""
        self.calls: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.hangups: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self._live: dict[str, HangupHook | None] = {}
        self._failures: dict[Kind, list[tuple[int, int, str]]] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._hook_tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(API + "/Calls.json", self._create_call)
        app.router.add_post(API + "/Calls/{call_sid}.json", self._update_call)
        app.router.add_post(API + "/Messages.json", self._create_message)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        for task in list(self._hook_tasks):
            task.cancel()

    async def __aenter__(self) -> TwilioRestStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -------------------------------------------------------------- test controls
    def add_live_call(self, call_sid: str, on_hangup: HangupHook | None = None) -> None:
        """Make `call_sid` known (an inbound call the fake caller placed), so a hang-up of it
        answers 200 instead of 404. `on_hangup` runs (as its own task) when it is hung up:
        pass `caller.remote_hangup` to have the fake caller send `stop` and close, as Twilio
        does when a call is completed through REST."""
        self._live[call_sid] = on_hangup

    def fail_next(
        self, kind: Kind, *, status: int = 500, code: int = 20500, message: str = "Internal error"
    ) -> None:
        """Answer the next request of `kind` with this error instead of succeeding."""
        self._failures.setdefault(kind, []).append((status, code, message))

    async def wait_for(self, kind: Kind, *, count: int = 1, timeout: float = 5.0) -> list[Any]:  # noqa: ASYNC109
        """Wait until at least `count` records of `kind` exist; return them all (a copy).
        Raises TimeoutError naming what was seen."""
        by_kind: dict[str, list[Any]] = {
            "call": self.calls,
            "message": self.messages,
            "hangup": self.hangups,
        }
        records = by_kind[kind]
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(records) >= count)
        except TimeoutError:
            raise TimeoutError(
                f"stand-in: waited {timeout:g} s for {count} {kind}(s), saw {len(records)}"
            ) from None
        return list(records)

    # ------------------------------------------------------------------- handlers
    async def _record(self, request: web.Request, form: dict[str, list[str]], status: int) -> None:
        self.requests.append(
            {"method": request.method, "path": request.path, "form": form, "status": status}
        )

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        ok_user = hmac.compare_digest(user.encode(), self.account_sid.encode())
        ok_password = hmac.compare_digest(password.encode(), self.auth_token.encode())
        return ok_user and ok_password and request.match_info["account"] == self.account_sid

    async def _prelude(
        self, request: web.Request, kind: Kind
    ) -> tuple[dict[str, list[str]], web.Response | None]:
        post = await request.post()
        form: dict[str, list[str]] = {}
        for key, value in post.items():
            form.setdefault(key, []).append(str(value))
        if not self._authorized(request):
            await self._record(request, form, 401)
            return form, _error(401, 20003, "Authenticate")
        failures = self._failures.get(kind)
        if failures:
            status, code, message = failures.pop(0)
            await self._record(request, form, status)
            return form, _error(status, code, message)
        return form, None

    async def _create_call(self, request: web.Request) -> web.Response:
        form, failed = await self._prelude(request, "call")
        if failed is not None:
            return failed
        one = {k: v[0] for k, v in form.items()}
        problem = None
        if not one.get("To"):
            problem = (21201, "No 'To' number is specified")
        elif not one.get("From"):
            problem = (21213, "No 'From' number is specified")
        elif not (one.get("Twiml") or one.get("Url") or one.get("ApplicationSid")):
            problem = (21205, "Url parameter is required.")
        elif len(one.get("Twiml", "")) > 4000:
            problem = (21232, "Twiml must be 4000 characters or fewer.")
        if problem is not None:
            await self._record(request, form, 400)
            return _error(400, *problem)
        sid = new_sid("CA")
        record = {
            "sid": sid,
            "to": one["To"],
            "from": one["From"],
            "twiml": one.get("Twiml"),
            "url": one.get("Url"),
            "status_callback": one.get("StatusCallback"),
            "status": "queued",
            "form": form,
        }
        self._live[sid] = None
        self.calls.append(record)
        await self._record(request, form, 201)
        await self._notify()
        return web.json_response(self._call_json(sid, one["To"], one["From"], "queued"), status=201)

    async def _update_call(self, request: web.Request) -> web.Response:
        form, failed = await self._prelude(request, "hangup")
        if failed is not None:
            return failed
        sid = request.match_info["call_sid"]
        status = form.get("Status", [""])[0]
        ending = status in ("completed", "canceled")
        if ending:
            self.hangups.append(sid)
        if sid not in self._live:
            await self._record(request, form, 404)
            await self._notify()
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        if ending:
            hook = self._live.pop(sid)
            for call in self.calls:
                if call["sid"] == sid:
                    call["status"] = "completed"
            if hook is not None:
                task = asyncio.create_task(hook())
                self._hook_tasks.add(task)
                task.add_done_callback(self._hook_tasks.discard)
        await self._record(request, form, 200)
        await self._notify()
        body = self._call_json(sid, "", "", "completed" if ending else "in-progress")
        return web.json_response(body, status=200)

    async def _create_message(self, request: web.Request) -> web.Response:
        form, failed = await self._prelude(request, "message")
        if failed is not None:
            return failed
        one = {k: v[0] for k, v in form.items()}
        problem = None
        if not one.get("To"):
            problem = (21604, "A 'To' phone number is required.")
        elif not (one.get("From") or one.get("MessagingServiceSid")):
            problem = (21603, "A 'From' phone number is required.")
        elif not (one.get("Body") or one.get("MediaUrl") or one.get("ContentSid")):
            problem = (21602, "Message body is required.")
        elif len(one.get("Body", "")) > 1600:
            problem = (21617, "The concatenated message body exceeds the 1600 character limit.")
        if problem is not None:
            await self._record(request, form, 400)
            return _error(400, *problem)
        sid = new_sid("SM")
        record = {
            "sid": sid,
            "to": one["To"],
            "from": one.get("From"),
            "body": one.get("Body"),
            "status": "queued",
            "form": form,
        }
        self.messages.append(record)
        await self._record(request, form, 201)
        await self._notify()
        return web.json_response(
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": one["To"],
                "from": one.get("From"),
                "body": one.get("Body"),
                "status": "queued",
                "direction": "outbound-api",
                "num_segments": "1",
                "api_version": "2010-04-01",
                "date_created": formatdate(usegmt=True),
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
            status=201,
        )

    def _call_json(self, sid: str, to: str, from_: str, status: str) -> dict[str, Any]:
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": from_,
            "status": status,
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": formatdate(usegmt=True),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json",
        }
