"""One logging set-up for the whole process, uvicorn's lines included.

Every line is `time LEVEL name: message`, with a short logger name: `session`, `call`,
`tool`, `approval` (Foreman's own, without the `foreman.` prefix), `uvicorn` (the HTTP
server). At INFO a user can follow what happens: one line per session start, end and
failure, per phone call (incoming, refused, placed, ended), per tool decision and per
approval prompt and answer. What the libraries underneath say per connection or per request
(uvicorn's WebSocket handshakes, httpx's requests) is DEBUG detail, and a request cut short
at shutdown is one line, not a traceback.

Call `configure_logging(level)` once at start-up, and run uvicorn with `log_config=None` so
it keeps this set-up instead of installing its own.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import sys
from typing import IO, Any, Final

__all__ = ["FORMAT", "configure_logging", "logging_config", "short_name"]

FORMAT: Final = "%(asctime)s %(levelname)s %(short_name)s: %(message)s"

# What uvicorn (and the websockets server under it) log at INFO for every connection.
_CONNECTION_LINES: Final = frozenset(
    {"connection open", "connection closed", "connection rejected (%d %s)"}
)
_WEBSOCKET_REQUEST: Final = '%s - "WebSocket %s"'
# Libraries that log every request at INFO: kept to warnings unless DEBUG is asked for.
_PER_REQUEST_LOGGERS: Final = ("httpx", "httpcore")


def short_name(name: str) -> str:
    """`foreman.session` -> `session`, `uvicorn.error` -> `uvicorn`; others unchanged."""
    if name.startswith("foreman."):
        return name.removeprefix("foreman.")
    if name == "uvicorn" or name.startswith("uvicorn."):
        return "uvicorn"
    return name


class ShortNameFormatter(logging.Formatter):
    """The standard formatter with `%(short_name)s` available."""

    def format(self, record: logging.LogRecord) -> str:
        record.short_name = short_name(record.name)
        return super().format(record)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to `sys.stderr` as it is when a line is written, not when logging was set up
    (a test that captures stderr swaps it)."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass  # always sys.stderr


class ConnectionDetail(logging.Filter):
    """Turns the per-connection INFO lines of uvicorn and websockets into DEBUG lines: shown
    only when the process logs at DEBUG."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__()
        self.show = level <= logging.DEBUG

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not isinstance(record.msg, str):
            return True
        if record.msg in _CONNECTION_LINES or record.msg.startswith(_WEBSOCKET_REQUEST):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return self.show
        return True


class CancelledAtShutdown(logging.Filter):
    """uvicorn logs a request it cancels at the end of a shutdown (one still running after
    the grace period) as an error with a traceback. That is the shutdown working: one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.name.startswith("uvicorn") and isinstance(exc, asyncio.CancelledError):
            record.msg, record.args = "a request still running at shutdown was cut short", ()
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def logging_config(level: str) -> dict[str, Any]:
    """The `logging.config.dictConfig` dictionary for `level` (debug, info, warning...)."""
    number = logging.getLevelNamesMapping()[level.upper()]
    per_request = number if number <= logging.DEBUG else max(number, logging.WARNING)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"foreman": {"()": ShortNameFormatter, "format": FORMAT}},
        "filters": {
            "connection_detail": {"()": ConnectionDetail, "level": number},
            "cancelled_at_shutdown": {"()": CancelledAtShutdown},
        },
        "handlers": {
            "stderr": {
                "()": StderrHandler,
                "formatter": "foreman",
                "filters": ["connection_detail", "cancelled_at_shutdown"],
            }
        },
        "root": {"level": number, "handlers": ["stderr"]},
        # uvicorn's loggers are left alone: run with `log_config=None`, uvicorn gives them no
        # handlers of their own, so their lines come here, through the root.
        "loggers": {name: {"level": per_request} for name in _PER_REQUEST_LOGGERS},
    }


def configure_logging(level: str) -> None:
    """Log at `level` to stderr in the one format. Safe to call again (it replaces)."""
    logging.config.dictConfig(logging_config(level))
