"""A private PulseAudio server with a null sink: real sound devices on a machine without a
sound card, for tests and CI.

PortAudio reaches it through ALSA's `pulse` device (Debian: pulseaudio, libasound2-plugins,
libportaudio2). Two facts make it usable (measured on such a machine):
* plain ALSA null devices have no clock (their callbacks spin), so PulseAudio it is;
* an idle null sink runs at a 2 s latency (late, missing capture callbacks) until a
  low-latency stream plays into it, so one plays silence into it for as long as it runs.

The server is private: its own runtime directory and socket, the default source set to the
sink's monitor (the microphone hears what the speaker plays, and what `play` puts there).
It is stopped, with its helper streams, when the context ends: no daemon is left behind.

    with PulseNullSink() as pulse:
        monkeypatch.setenv("PULSE_SERVER", pulse.server)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["PulseNullSink", "PulseUnavailable", "have_pulseaudio"]

SINK = "vsink"


class PulseUnavailable(RuntimeError):
    pass


def have_pulseaudio() -> bool:
    return all(shutil.which(t) for t in ("pulseaudio", "pactl", "pacat"))


class PulseNullSink:
    def __init__(self, sink: str = SINK) -> None:
        self.sink = sink
        self._dir = Path(tempfile.mkdtemp(prefix="foreman-pulse-"))
        self.server = f"unix:{self._dir / 'native'}"
        self._daemon: subprocess.Popen[bytes] | None = None
        self._keepalive: subprocess.Popen[bytes] | None = None
        self._players: list[subprocess.Popen[bytes]] = []

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PULSE_SERVER": self.server,
            "PULSE_RUNTIME_PATH": str(self._dir),
            "HOME": str(self._dir),
        }

    def __enter__(self) -> PulseNullSink:
        if not have_pulseaudio():
            raise PulseUnavailable(
                "PulseAudio is not installed (apt-get install pulseaudio pulseaudio-utils)"
            )
        self._daemon = subprocess.Popen(
            [
                "pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1",
                "--disallow-exit", "--use-pid-file=no", "--log-target=stderr", "--log-level=0",
                "-L", f"module-native-protocol-unix socket={self._dir / 'native'} auth-anonymous=1",
                "-L", f"module-null-sink sink_name={self.sink} rate=48000",
                "-L", "module-always-sink",
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._daemon.poll() is not None:
                raise PulseUnavailable(f"pulseaudio exited with {self._daemon.returncode}")
            if self._pactl("info", check=False).returncode == 0:
                break
            time.sleep(0.05)
        else:
            self.close()
            raise PulseUnavailable("pulseaudio did not start within 15 s")
        self._pactl("set-default-sink", self.sink)
        self._pactl("set-default-source", f"{self.sink}.monitor")
        self._keepalive = subprocess.Popen(
            ["pacat", "-p", "-d", self.sink, "--latency-msec=10", "--raw", "/dev/zero"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def _pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["pactl", *args], env=self.env, capture_output=True, check=check, timeout=10
        )

    def play(self, pcm16: bytes, rate: int) -> subprocess.Popen[bytes]:
        """Play PCM16 mono into the sink (the microphone hears it); returns the player."""
        player = subprocess.Popen(
            ["pacat", "-p", "-d", self.sink, "--raw", "--format=s16le", f"--rate={rate}",
             "--channels=1", "--latency-msec=20"],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert player.stdin is not None
        player.stdin.write(pcm16)
        player.stdin.close()
        self._players.append(player)
        return player

    def record(self, rate: int = 16000) -> subprocess.Popen[bytes]:
        """Record what the sink plays (PCM16 mono at `rate`) until `terminate()`."""
        recorder = subprocess.Popen(
            ["parec", "-d", f"{self.sink}.monitor", "--raw", "--format=s16le", f"--rate={rate}",
             "--channels=1", "--latency-msec=200"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._players.append(recorder)
        return recorder

    def close(self) -> None:
        for proc in [*self._players, self._keepalive, self._daemon]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self._players.clear()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
