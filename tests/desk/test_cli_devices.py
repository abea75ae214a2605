"""`foreman devices`: the list on real (null sink) devices, and one line without any."""

from __future__ import annotations

import io
import subprocess
import sys

from foreman.cli_devices import show
from foreman.testing.pulse import PulseNullSink


def test_lists_the_null_sink_and_marks_the_chosen_devices(pulse: PulseNullSink) -> None:
    out = io.StringIO()
    assert show("", "", out) == 0
    text = out.getvalue()
    assert "pulse" in text
    assert "input: default" in text and "output: default" in text
    assert any(line.startswith("<>") for line in text.splitlines())


def test_a_name_that_matches_nothing_is_one_line(pulse: PulseNullSink) -> None:
    out = io.StringIO()
    assert show("no such microphone", "", out) == 1
    assert "input: none: no input device matches [audio] input_device = 'no such microphone'" in (
        out.getvalue()
    )


def test_without_a_sound_server_the_cli_says_so_in_one_line() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "foreman", "devices"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": "src", "HOME": "/nonexistent"},
    )
    assert run.returncode == 1
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("foreman devices: ") and "Traceback" not in run.stderr
