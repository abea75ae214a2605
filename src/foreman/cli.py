"""`foreman` command line: serve, mock-realtime, call, tui.

Errors print one line and exit non-zero; tracebacks are for bugs, not for bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from foreman import __version__
from foreman.config import Settings, is_loopback, load_settings
from foreman.exceptions import ConfigError
from foreman.io.realtime_ws import needs_api_key

log = logging.getLogger("foreman")

DEFAULT_SERVER = "http://127.0.0.1:8765"


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config) if args.config else load_settings()


def startup_notes(settings: Settings) -> list[str]:
    """What the operator should know at start-up (no secrets)."""
    notes = []
    rt = settings.realtime
    if needs_api_key(rt.endpoint) and not rt.api_key:
        notes.append(
            "No OPENAI_API_KEY set. Sessions against the OpenAI endpoint will be refused. "
            "To try Foreman without a key: `foreman mock-realtime --port 9100` in another "
            "terminal, then `rt-probe start ws://127.0.0.1:9100/v1/realtime`."
        )
    if not settings.twilio.validate_signatures:
        notes.append(
            "WARNING: Twilio signature checking is OFF ([twilio] validate_signatures = false). "
            "Anyone who can reach this server can start calls on your OpenAI account. "
            "Use this only for local development."
        )
    return notes


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from foreman.api.app import create_app

    settings = _settings(args)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    if not is_loopback(host) and not settings.server.api_token:
        raise ConfigError(
            f"{settings.source}: binding to {host} (not loopback) needs an API token: set "
            "[server] api_token or FOREMAN_API_TOKEN"
        )
    for note in startup_notes(settings):
        log.warning(note)
    log.info(
        "foreman %s serving on http://%s:%d (config: %s)", __version__, host, port, settings.source
    )
    # The app checks Host names against the address it is really bound to.
    server = settings.server.model_copy(update={"host": host, "port": port})
    settings = settings.replace(server=server)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        ws="websockets-sansio",
        log_level=args.log_level,
        access_log=False,
    )
    return 0


def cmd_mock(args: argparse.Namespace) -> int:
    from foreman.testing.mock_realtime.cli import main as mock_main

    return mock_main(args.rest)


def cmd_call(args: argparse.Namespace) -> int:
    import httpx

    url = (args.server or os.environ.get("FOREMAN_URL") or DEFAULT_SERVER).rstrip("/")
    headers = {}
    token = os.environ.get("FOREMAN_API_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"to": args.to, **({"purpose": args.purpose} if args.purpose else {})}
    try:
        resp = httpx.post(f"{url}/api/calls", json=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        print(f"foreman call: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    if resp.status_code >= 400:
        print(f"foreman call: {resp.status_code}: {_detail(resp)}", file=sys.stderr)
        return 1
    print(json.dumps(resp.json()))
    return 0


def _detail(resp: object) -> str:
    try:
        detail = resp.json().get("detail")  # type: ignore[attr-defined]
    except Exception:
        return str(getattr(resp, "text", ""))[:200]
    return json.dumps(detail) if not isinstance(detail, str) else detail


def cmd_tui(args: argparse.Namespace) -> int:
    print("foreman tui: the Textual TUI is not built yet (planned); use rt-probe meanwhile")
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="foreman", description="Foreman voice assistant core")
    parser.add_argument("--version", action="version", version=f"foreman {__version__}")
    parser.add_argument(
        "--config", help="config file (default: $FOREMAN_CONFIG or config/foreman.toml)"
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP control API and phone bridge")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    mock = sub.add_parser(
        "mock-realtime", help="run the bundled mock Realtime server", add_help=False
    )
    mock.add_argument("rest", nargs=argparse.REMAINDER)
    mock.set_defaults(func=cmd_mock)

    call = sub.add_parser("call", help="place an outbound phone call through a running server")
    call.add_argument("to", help="E.164 number, e.g. +14155550123")
    call.add_argument("--purpose", help="what the call is for (goes into the instructions)")
    call.add_argument("--server", help=f"server URL (default $FOREMAN_URL or {DEFAULT_SERVER})")
    call.set_defaults(func=cmd_call)

    tui = sub.add_parser("tui", help="terminal UI (planned)")
    tui.set_defaults(func=cmd_tui)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # `foreman mock-realtime --help` must reach the mock's own parser.
    if argv[:1] == ["mock-realtime"]:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        from foreman.testing.mock_realtime.cli import main as mock_main

        return mock_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"foreman: config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
