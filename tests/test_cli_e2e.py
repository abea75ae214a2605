"""The issue's "done when", as a user runs it: `foreman mock-realtime`, `foreman serve` and
`rt-probe` as real processes on loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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
