"""One log format for every line, quiet about connections and requests at INFO, and no
traceback for a request cut short at shutdown."""

from __future__ import annotations

import asyncio
import logging

import pytest

from foreman.logs import configure_logging, short_name


@pytest.fixture
def uvicorn_error(monkeypatch: pytest.MonkeyPatch) -> logging.Logger:
    """uvicorn's logger as `foreman serve` has it (uvicorn run with `log_config=None`);
    in-process servers of other tests gave it handlers of its own."""
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "handlers", [])
        monkeypatch.setattr(logger, "propagate", True)
        monkeypatch.setattr(logger, "level", logging.NOTSET)
        monkeypatch.setattr(logger, "disabled", False)
    return logging.getLogger("uvicorn.error")


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Each line without its time stamp."""
    return [line.split(" ", 2)[2] for line in capsys.readouterr().err.splitlines()]


def test_short_names() -> None:
    assert short_name("foreman.session") == "session"
    assert short_name("foreman.api.app") == "api.app"
    assert short_name("uvicorn.error") == short_name("uvicorn") == "uvicorn"
    assert short_name("websockets.client") == "websockets.client"


def log_a_bit(uvicorn_error: logging.Logger) -> None:
    uvicorn_error.info("Application startup complete.")
    uvicorn_error.info("connection open")
    uvicorn_error.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/twilio/media")
    logging.getLogger("httpx").info("HTTP Request: POST http://127.0.0.1/x 200 OK")
    logging.getLogger("foreman.session").info("call-CA1 started")


def test_info_is_one_format_without_connection_and_request_lines(
    capsys: pytest.CaptureFixture[str], uvicorn_error: logging.Logger
) -> None:
    configure_logging("info")
    log_a_bit(uvicorn_error)
    assert lines(capsys) == [
        "INFO uvicorn: Application startup complete.",
        "INFO session: call-CA1 started",
    ]


def test_debug_shows_them_as_debug(
    capsys: pytest.CaptureFixture[str], uvicorn_error: logging.Logger
) -> None:
    configure_logging("debug")
    log_a_bit(uvicorn_error)
    assert lines(capsys) == [
        "INFO uvicorn: Application startup complete.",
        "DEBUG uvicorn: connection open",
        'DEBUG uvicorn: 127.0.0.1:5000 - "WebSocket /twilio/media" [accepted]',
        "INFO httpx: HTTP Request: POST http://127.0.0.1/x 200 OK",
        "INFO session: call-CA1 started",
    ]


def test_a_request_cancelled_at_shutdown_is_one_line(
    capsys: pytest.CaptureFixture[str], uvicorn_error: logging.Logger
) -> None:
    configure_logging("info")
    try:
        raise asyncio.CancelledError("Task cancelled, timeout graceful shutdown exceeded")
    except asyncio.CancelledError:
        uvicorn_error.exception("Exception in ASGI application\n")
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        uvicorn_error.exception("Exception in ASGI application\n")
    out = capsys.readouterr().err.splitlines()
    assert out[0].endswith(" WARNING uvicorn: a request still running at shutdown was cut short")
    assert out[1].endswith(" ERROR uvicorn: Exception in ASGI application")
    assert "Traceback (most recent call last):" in out  # a bug keeps its traceback
    assert out[-1] == "RuntimeError: a bug"
