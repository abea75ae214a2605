"""`foreman tui`: where it connects, the token (environment or a file, never an argument),
and one line instead of a traceback when something is missing."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from foreman import cli
from foreman.tui import command
from foreman.tui.app import ForemanApp


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[ForemanApp]:
    """Apps the command would run (the terminal is not taken over)."""
    apps: list[ForemanApp] = []

    def run(app: ForemanApp) -> None:
        apps.append(app)

    monkeypatch.setattr(ForemanApp, "run", run)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    return apps


def test_server_and_token_file(
    tmp_path: Path, started: list[ForemanApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREMAN_API_TOKEN", "from-the-environment")
    token = tmp_path / "token"
    token.write_text("  from-the-file\n")
    argv = ["tui", "--server", "http://192.0.2.7:8765", "--token-file", str(token)]
    assert cli.main(argv) == 0
    (app,) = started
    assert app.client.base_url == "http://192.0.2.7:8765"
    assert app.client._http.headers["Authorization"] == "Bearer from-the-file"
    # Log records go to the console's log pane, not through the screen.
    assert [type(h).__name__ for h in logging.getLogger().handlers] == ["ToLogPane"]


def test_url_and_token_from_the_environment(
    started: list[ForemanApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREMAN_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("FOREMAN_API_TOKEN", "env-token")
    assert cli.main(["tui"]) == 0
    (app,) = started
    assert app.client.base_url == "http://127.0.0.1:9999"
    assert app.client._http.headers["Authorization"] == "Bearer env-token"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--server", "ftp://x"], "foreman tui: not a foreman server URL: 'ftp://x'"),
        (["--token-file", "/nonexistent/token"], "cannot read the token file /nonexistent/"),
        (["--token-file", "EMPTY"], "foreman tui: the token file"),
    ],
)
def test_what_cannot_work_is_one_line(
    argv: list[str],
    expected: str,
    tmp_path: Path,
    started: list[ForemanApp],
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    argv = [str(empty) if a == "EMPTY" else a for a in argv]
    assert cli.main(["tui", *argv]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and started == []


def test_without_textual_it_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "textual", None)  # import textual -> ImportError
    monkeypatch.delitem(sys.modules, "foreman.tui.app")
    assert cli.main(["tui"]) == 2
    assert capsys.readouterr().err == command.MISSING_TEXTUAL + "\n"
