"""`foreman` command line: serve, init, mock-realtime, call, fake-call, tui, chat, history,
mock-chat (each in its own module where it is more than a few lines).

Errors print one line and exit non-zero (2 for a setting to fix); tracebacks are for bugs,
not for bad input. `--config` and `--log-level` go before or after the command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import os
import socket
import sqlite3
import sys

from foreman import __version__, cli_chat, cli_devices, cli_fake_call, cli_init
from foreman.client_types import DEFAULT_URL
from foreman.config import (
    PACKAGED_SOURCE,
    Settings,
    is_loopback,
    load_settings,
    local_engine_selected,
    user_config_dir,
    voice_target,
)
from foreman.exceptions import ConfigError, ForemanError
from foreman.io.realtime_ws import needs_api_key
from foreman.logs import configure_logging
from foreman.tui import command as tui_command

log = logging.getLogger("foreman")

LOG_LEVELS = ("debug", "info", "warning", "error")
LISTEN_BACKLOG = 2048  # uvicorn's default
STARTUP_FAILURE = 3  # uvicorn's exit code when the app fails to start


class StartupError(ForemanError):
    """The server cannot start as configured; the message names the setting to change."""


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config) if args.config else load_settings()


def startup_notes(settings: Settings) -> list[str]:
    """What the operator should know at start-up (no secrets)."""
    notes = []
    rt = settings.realtime
    target = voice_target(settings)
    if local_engine_selected(settings):
        engine = (
            f"the offline engine (Silero VAD, Whisper base, local model {settings.local.llm}, "
            "espeak-ng; the models load with the first session)"
        )
        if settings.local.use == "always":
            notes.append(f"Voice sessions and phone calls run on {engine}: [local] use = always.")
        else:
            notes.append(
                "No OPENAI_API_KEY is set in the environment of this `foreman serve`: voice "
                f"sessions and phone calls run on {engine}. Set it where `foreman serve` runs "
                "for the cloud voice (clients such as rt-probe never need it)."
            )
    elif needs_api_key(target.endpoint) and not rt.api_key:
        notes.append(
            "OPENAI_API_KEY is not set in the environment of this `foreman serve`, so sessions "
            "against the OpenAI endpoint will be refused. Set it where `foreman serve` runs "
            "(clients such as rt-probe never need it). To try Foreman without a key: "
            "`foreman mock-realtime --port 9100` in another terminal, then "
            f"`rt-probe start ws://127.0.0.1:9100{target.mock_path}`."
        )
    if not settings.twilio.validate_signatures:
        notes.append(
            "WARNING: Twilio signature checking is OFF ([twilio] validate_signatures = false). "
            "Anyone who can reach this server can start calls on your OpenAI account. "
            "Use this only for local development."
        )
    return notes


def check_database(settings: Settings) -> None:
    """Open the SQLite database once, so a path that cannot work is one line naming the
    setting, before anything else starts."""
    from foreman.stores.sqlite.db import connect

    path = settings.storage.db_path
    if os.environ.get("FOREMAN_DB"):
        setting = "FOREMAN_DB"
    elif settings.source.startswith("<"):
        setting = "[storage] db_path"
    else:
        setting = f"[storage] db_path in {settings.source}"
    try:
        connect(path).close()
    except (OSError, sqlite3.Error) as exc:
        raise StartupError(
            f"cannot open the database {path}: {_why(exc)}; set {setting} to a file in a "
            "writable folder"
        ) from None


def _why(exc: BaseException) -> str:
    if isinstance(exc, FileExistsError | NotADirectoryError):
        return f"{exc.filename} is not a folder"
    if isinstance(exc, PermissionError):
        return f"no permission to write {exc.filename}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0 picks a free one), as uvicorn would bind it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} on {host} is already in use (another foreman serve?): "
                "choose another with --port or [server] port"
            ) from None
        raise StartupError(
            f"cannot listen on {host} port {port}: {exc.strerror or exc}; "
            "check --host/--port or [server] host/port"
        ) from None
    return sock


def http_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def cmd_serve(args: argparse.Namespace) -> int:
    from foreman.api.app import create_app
    from foreman.api.server import serve
    from foreman.io.uvicorn_settings import uvicorn_settings

    settings = _settings(args)
    host = args.host or settings.server.host
    port = settings.server.port if args.port is None else args.port
    if not is_loopback(host) and not settings.server.api_token:
        raise ConfigError(
            f"{settings.source}: binding to {host} (not loopback) needs an API token: set "
            "[server] api_token or FOREMAN_API_TOKEN"
        )
    for note in startup_notes(settings):
        log.warning(note)
    if settings.source == PACKAGED_SOURCE:
        log.info(
            "no config file found: using the packaged defaults (`foreman init` writes an "
            "editable copy to %s)",
            user_config_dir(),
        )
    check_database(settings)
    sock = bind_listener(host, port)
    try:
        port = sock.getsockname()[1]
        # The app checks Host names against the address it is really bound to.
        server_settings = settings.server.model_copy(update={"host": host, "port": port})
        app = create_app(settings.replace(server=server_settings))
        _warm_offline_engine(app)
        # Bound and listening: connections from now on wait in the backlog until uvicorn
        # accepts them, so this line is true when it is printed.
        log.info(
            "foreman %s serving on %s (config: %s)",
            __version__,
            http_url(host, port),
            settings.source,
        )
        # Ctrl-C is how a server is ended, not a failure (the server handles it; this is
        # for one that lands before its handler is in place).
        started = True
        with contextlib.suppress(KeyboardInterrupt):
            started = serve(
                app, [sock], log_level=args.log_level, options=uvicorn_settings(settings)
            )
    finally:
        sock.close()
    return 0 if started else STARTUP_FAILURE


def _warm_offline_engine(app: object) -> None:
    """With the offline engine as the voice, load its models in the background now, so the
    first call is answered without waiting for them."""
    import threading

    runtime = getattr(getattr(app.state.sessions, "backend_factory", None), "runtime", None)  # type: ignore[attr-defined]
    if runtime is None:
        return
    tools = getattr(app.state, "tools", None)  # type: ignore[attr-defined]

    def warm() -> None:
        if not runtime.warm_sync() or tools is None or not runtime.config.warm_prompt:
            return
        from foreman.backends.local_prompt import warm_shared_prefix
        from foreman.policy.context import CallContext, Channel, Role

        # What an unknown caller is offered: the prefix of the first call most likely.
        stranger = CallContext(session_id="warm-up", channel=Channel.PHONE, role=Role.UNKNOWN)
        seconds = warm_shared_prefix(runtime, tools.dispatcher.tool_definitions(stranger))
        if seconds is not None:
            log.info("offline engine: prompt prefix read in %.1f s", seconds)

    threading.Thread(target=warm, name="offline-warm", daemon=True).start()


def cmd_mock(args: argparse.Namespace) -> int:
    from foreman.testing.mock_realtime.cli import main as mock_main

    return mock_main(args.rest)


def cmd_call(args: argparse.Namespace) -> int:
    from foreman.client import ClientError, ForemanClient, PlacedCall

    async def place() -> PlacedCall:
        async with ForemanClient(args.server) as client:
            return await client.place_call(args.to, args.purpose)

    try:
        placed = asyncio.run(place())
    except ClientError as exc:
        print(f"foreman call: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(dict(placed.raw)))
    return 0


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port < 65536:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {port}")
    return port


def _global_options(with_defaults: bool) -> argparse.ArgumentParser:
    """--config and --log-level. Subcommands take them too, without defaults of their own:
    a subcommand's default would overwrite a value given before the subcommand."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--config",
        metavar="FILE",
        default=None if with_defaults else argparse.SUPPRESS,
        help="config file (default: $FOREMAN_CONFIG, else ./config/foreman.toml, else "
        "~/.config/foreman/foreman.toml, else the packaged defaults)",
    )
    options.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info" if with_defaults else argparse.SUPPRESS,
        help="log detail (default: info)",
    )
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="foreman",
        description="Foreman voice assistant core: the control API, phone bridge and tools.",
        parents=[_global_options(with_defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"foreman {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, *, own_options: bool = True) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            description=summary,
            parents=[_global_options(with_defaults=False)] if own_options else [],
            add_help=own_options,
        )

    serve = command("serve", "Run the HTTP control API and the phone bridge.")
    serve.add_argument("--host", help="interface to bind (default: [server] host)")
    serve.add_argument(
        "--port", type=_port, help="TCP port (default: [server] port; 0 picks a free one)"
    )
    serve.set_defaults(func=cmd_serve)

    cli_init.register(sub)

    # Never parsed here: main() hands everything after the name to the mock's own parser.
    mock = command("mock-realtime", "Run the bundled mock Realtime server.", own_options=False)
    mock.add_argument("rest", nargs=argparse.REMAINDER)
    mock.set_defaults(func=cmd_mock)

    call = command("call", "Place an outbound phone call through a running server.")
    call.add_argument("to", help="E.164 number, e.g. +14155550123")
    call.add_argument("--purpose", help="what the call is for (goes into the instructions)")
    call.add_argument("--server", help=f"server URL (default $FOREMAN_URL or {DEFAULT_URL})")
    call.set_defaults(func=cmd_call)

    cli_fake_call.register(command)
    tui_command.register(command)
    cli_chat.register(command)
    cli_devices.register(command)
    return parser


def _split_mock_realtime(argv: list[str]) -> tuple[list[str], list[str]] | None:
    """(global options, the mock's arguments) when the command is mock-realtime."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--config", "--log-level"):
            i += 2
        elif arg.startswith(("--config=", "--log-level=")):
            i += 1
        elif arg == "mock-realtime":
            return argv[:i], argv[i + 1 :]
        else:
            return None
    return None


def _configure_logging(level: str) -> None:
    configure_logging(level)  # one format for Foreman's lines and uvicorn's


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    mock = _split_mock_realtime(argv)
    if mock is not None:
        # `foreman mock-realtime --help` must reach the mock's own parser, untouched.
        options = _global_options(with_defaults=True).parse_args(mock[0])
        _configure_logging(options.log_level)
        from foreman.testing.mock_realtime.cli import main as mock_main

        return mock_main(mock[1])
    args = build_parser().parse_args(argv)
    _configure_logging(args.log_level)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"foreman: config error: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"foreman: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
