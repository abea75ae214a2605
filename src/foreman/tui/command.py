"""`foreman tui`: the command that starts the console. Textual is imported only when the
command runs, so the rest of `foreman` works without the `tui` extra."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from foreman.client_types import DEFAULT_URL, ClientError

if TYPE_CHECKING:
    from foreman.tui.app import ForemanApp

SUMMARY = "The owner's console: calls, voice, chat and approvals, over a running server."
MISSING_TEXTUAL = "foreman tui: the console needs Textual: pip install 'foreman-voice[tui]'"


def register(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add `tui` through the CLI's own `command(name, summary)` factory."""
    tui = command("tui", SUMMARY)
    tui.add_argument(
        "--server", metavar="URL", help=f"server URL (default $FOREMAN_URL or {DEFAULT_URL})"
    )
    tui.add_argument(
        "--token-file",
        metavar="FILE",
        type=Path,
        help="read the API token from FILE (default $FOREMAN_API_TOKEN); a token is never "
        "taken on the command line, where other users of the machine could read it",
    )
    tui.set_defaults(func=run)


def read_token(path: Path | None) -> str | None:
    """The token in `path` (surrounding whitespace dropped); None: use the environment."""
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
        raise ClientError(f"cannot read the token file {path}: {reason}") from None
    if not token:
        raise ClientError(f"the token file {path} is empty")
    return token


def run(args: argparse.Namespace) -> int:
    try:
        from foreman.tui.app import ForemanApp
    except ImportError as exc:
        if exc.name is None or not exc.name.startswith(("textual", "rich")):
            raise
        print(MISSING_TEXTUAL, file=sys.stderr)
        return 2
    from foreman.client import ForemanClient

    try:
        client = ForemanClient(args.server, read_token(args.token_file))
    except ClientError as exc:
        print(f"foreman tui: {exc}", file=sys.stderr)
        return 2
    app = ForemanApp(client)
    _log_into(app)
    app.run()
    return 0


def _log_into(app: ForemanApp) -> None:
    """Log records go to the console's log pane: written to the terminal, they would tear
    through the screen. Routine request lines (httpx at INFO) are left out."""

    class ToLogPane(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            app.add_log_line(f"{record.levelname.lower()}: {record.name}: {record.getMessage()}")

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(ToLogPane())
    logging.getLogger("httpx").setLevel(logging.WARNING)
