"""`foreman mock-realtime`, `foreman serve` and `rt-probe` as a user runs them: real
processes on loopback."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from foreman.testing.server import free_port
from foreman.testing.timeouts import unit

SRC = Path(__file__).resolve().parents[1] / "src"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FOREMAN_"))}
    env["PYTHONPATH"] = str(SRC)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _wait_for_line(proc: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    """Read the process's output until a line matches (the process says it is ready)."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m
    raise AssertionError(f"process exited without {pattern!r}; output:\n{''.join(seen)}")


@pytest.fixture
def mock_url() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "foreman", "mock-realtime", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    )
    try:
        yield _wait_for_line(proc, r"(ws://127\.0\.0\.1:\d+/v1/realtime)").group(1)
    finally:
        proc.terminate()
        proc.wait(unit(10))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    cfg = tmp_path / "foreman.toml"
    cfg.write_text(
        f'[server]\nport = {port}\n[storage]\ndb_path = "{tmp_path / "f.db"}"\n'
        f'[calendar]\nics_path = "{tmp_path / "cal.ics"}"\n'
        # The cloud path: without a key the offline engine would answer a start instead.
        '[local]\nuse = "never"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "foreman", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(FOREMAN_CONFIG=str(cfg)),
    )
    try:
        _wait_for_line(proc, r"Application startup complete")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(unit(10))


def probe(server: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from foreman.probe import main; raise SystemExit(main())",
            "--server",
            server,
            *args,
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=unit(30),
        check=False,
    )


def test_rt_probe_start_say_stop(mock_url: str, server: str) -> None:
    r = probe(server, "start", mock_url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("active") and "model=gpt-realtime-2.1" in r.stdout

    r = probe(server, "say", "hello")
    assert r.returncode == 0, r.stderr
    assert "You said: hello" in r.stdout  # the mock's default reply transcript

    st = json.loads(probe(server, "--json", "status").stdout)
    assert st["active"] is True and st["model"] == "gpt-realtime-2.1"

    r = probe(server, "stop")
    assert r.returncode == 0 and r.stdout.startswith("inactive")
    assert json.loads(probe(server, "--json", "status").stdout)["active"] is False


def test_rt_probe_errors_are_one_line(server: str) -> None:
    r = probe(server, "say", "hello")  # no session
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "409" in r.stderr
    r = probe(server, "start")  # the OpenAI endpoint with no key
    assert r.returncode == 1 and "OPENAI_API_KEY" in r.stderr and "Traceback" not in r.stderr


def test_rt_probe_with_the_server_down() -> None:
    r = probe(f"http://127.0.0.1:{free_port()}", "status")
    assert r.returncode == 1
    assert r.stderr.strip().endswith("(is `foreman serve` running?)") and r.stderr.count("\n") == 1


def test_serve_refuses_a_public_bind_without_a_token(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "foreman", "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=unit(30),
        check=False,
    )
    assert r.returncode == 2
    assert "needs an API token" in r.stderr and "Traceback" not in r.stderr


def test_serve_stops_on_a_bad_config_naming_key_and_file(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[realtime]\naudio_out_format = "opus"\n')
    r = subprocess.run(
        [sys.executable, "-m", "foreman", "serve"],
        capture_output=True,
        text=True,
        env=_env(FOREMAN_CONFIG=str(cfg)),
        timeout=unit(30),
        check=False,
    )
    assert r.returncode == 2
    assert "realtime.audio_out_format" in r.stderr and str(cfg) in r.stderr


# --- `foreman serve` tells the truth --------------------------------------------------------


def serve(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `foreman` to completion (for start-ups that must fail)."""
    return subprocess.run(
        [sys.executable, "-m", "foreman", *argv],
        capture_output=True,
        text=True,
        env=_env(**env),
        timeout=unit(30),
        check=False,
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _config(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "foreman.toml"
    cfg.write_text(
        f'[storage]\ndb_path = "{tmp_path / "f.db"}"\n'
        f'[calendar]\nics_path = "{tmp_path / "cal.ics"}"\n{extra}'
    )
    return cfg


@pytest.mark.parametrize("where", ["before", "after"])
def test_serving_is_logged_once_bound_with_the_config_given(tmp_path: Path, where: str) -> None:
    cfg = _config(tmp_path)
    options = ["--config", str(cfg), "--log-level", "info"]
    argv = [*options, "serve", "--port", "0"] if where == "before" else ["serve", *options]
    if where == "after":
        argv += ["--port", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "foreman", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    )
    try:
        m = _wait_for_line(proc, r"serving on (http://127\.0\.0\.1:(\d+)) \(config: (.*)\)$")
        assert m.group(3) == str(cfg) and int(m.group(2)) > 0  # the real port, not 0
        # No retry, no wait: the socket listens before the line is printed.
        assert httpx.get(m.group(1) + "/api/health", timeout=unit(10)).status_code == 200
    finally:
        proc.terminate()
        proc.wait(unit(10))


def test_a_busy_port_is_one_line_naming_the_fix(busy_port: int, tmp_path: Path) -> None:
    expected = (
        f"foreman: port {busy_port} on 127.0.0.1 is already in use (another foreman serve?): "
        "choose another with --port or [server] port"
    )
    r = serve("serve", "--port", str(busy_port))
    assert r.returncode == 2 and r.stderr.splitlines()[-1] == expected
    assert "Traceback" not in r.stderr and "serving on" not in r.stderr
    cfg = _config(tmp_path, f"[server]\nport = {busy_port}\n")
    r = serve("serve", "--config", str(cfg))
    assert r.returncode == 2 and r.stderr.splitlines()[-1] == expected


@pytest.mark.parametrize(
    "argv", [["--log-level", "error", "serve"], ["serve", "--log-level", "error"]]
)
def test_log_level_before_or_after_the_command(argv: list[str], busy_port: int) -> None:
    r = serve(*argv, "--port", str(busy_port))
    # At error level the start-up notes (warnings) are silent: only the error remains.
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1
    assert "already in use" in r.stderr


def test_the_no_key_note_says_the_key_belongs_to_the_server(busy_port: int) -> None:
    r = serve("serve", "--port", str(busy_port))
    (note,) = [line for line in r.stderr.splitlines() if "OPENAI_API_KEY" in line]
    assert "WARNING" in note and "Set it where `foreman serve` runs" in note
    assert "rt-probe never need" in note
    r = serve("serve", "--port", str(busy_port), OPENAI_API_KEY="sk-test-not-real")
    assert "OPENAI_API_KEY" not in r.stderr and "sk-test" not in r.stderr


def test_a_database_path_under_a_file_names_foreman_db(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    r = serve("serve", "--port", "0", FOREMAN_DB=str(blocker / "foreman.db"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1] == (
        f"foreman: cannot open the database {blocker / 'foreman.db'}: {blocker} is not a "
        "folder; set FOREMAN_DB to a file in a writable folder"
    )


def test_a_database_path_that_is_a_folder_names_the_config_key(tmp_path: Path) -> None:
    cfg = tmp_path / "foreman.toml"
    cfg.write_text(f'[storage]\ndb_path = "{tmp_path}"\n')
    r = serve("--config", str(cfg), "serve", "--port", "0")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    last = r.stderr.splitlines()[-1]
    assert last.startswith(f"foreman: cannot open the database {tmp_path}: ")
    assert last.endswith(f"set [storage] db_path in {cfg} to a file in a writable folder")


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o500)
        yield folder
        folder.chmod(0o700)
        return
    # Root ignores permission bits; an immutable folder refuses even root.
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", folder], check=False).returncode:
        pytest.skip("no way to make a folder read-only for root here")
    try:
        yield folder
    finally:
        subprocess.run([chattr, "-i", folder], check=True)


def test_a_database_in_a_read_only_folder_is_one_line(read_only_folder: Path) -> None:
    r = serve("serve", "--port", "0", FOREMAN_DB=str(read_only_folder / "sub" / "foreman.db"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1] == (
        f"foreman: cannot open the database {read_only_folder / 'sub' / 'foreman.db'}: no "
        f"permission to write {read_only_folder / 'sub'}; set FOREMAN_DB to a file in a "
        "writable folder"
    )
    r = serve("serve", "--port", "0", FOREMAN_DB=str(read_only_folder / "foreman.db"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1].startswith(
        f"foreman: cannot open the database {read_only_folder / 'foreman.db'}: "
    )


@pytest.mark.parametrize("argv", [["mock-realtime"], ["--log-level", "debug", "mock-realtime"]])
def test_mock_realtime_gets_its_arguments_untouched(argv: list[str]) -> None:
    r = serve(*argv, "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: foreman mock-realtime")
    assert "--drop-after-events" in r.stdout  # the mock's own parser answered
