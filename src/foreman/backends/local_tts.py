"""Text to speech for the local engine: the Debian synthesizers as child processes, or Piper.

espeak-ng (GPL-3.0 program, run as a separate process) is the default: it starts speaking in
milliseconds (about 2 ms of CPU per second of audio) and is in every distribution; flite is
the fallback. Both sound robotic. Text goes in on stdin, never on the command line, so
nothing a model writes can become an option. `synthesize` blocks: call it from a worker
thread. Piper (`local_piper`, `[local] tts = "piper"`) sounds far better, but piper-tts is
GPL-3.0 and runs in-process, so it is an optional extra and `auto` does not pick it.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from foreman.backends.local_piper import PiperSynthesizer
from foreman.speech.packaged import ModelUnavailable

__all__ = ["Synthesizer", "make_synthesizer"]

_TIMEOUT_S = 20.0


class Synthesizer(Protocol):
    @property
    def name(self) -> str:
        """Shown in status, e.g. "espeak-ng en-us"."""
        ...

    def synthesize(self, text: str) -> tuple[bytes, int]:
        """PCM16 LE mono speech for `text` and its sample rate (blocking)."""
        ...


@dataclass(frozen=True, slots=True)
class CommandSynthesizer:
    """A synthesizer program that reads text on stdin and writes a WAV on stdout, or into the
    file named by `{out}` in its arguments (flite seeks in its output, so no pipe)."""

    name: str
    argv: tuple[str, ...]

    def synthesize(self, text: str) -> tuple[bytes, int]:
        if "{out}" not in self.argv:
            return self._read(self._run(self.argv, text))
        with tempfile.TemporaryDirectory(prefix="foreman-tts-") as tmp:
            out = Path(tmp) / "speech.wav"
            self._run(tuple(str(out) if a == "{out}" else a for a in self.argv), text)
            return self._read(out.read_bytes())

    def _run(self, argv: tuple[str, ...], text: str) -> bytes:
        done = subprocess.run(
            argv, input=text.encode(), capture_output=True, timeout=_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"{self.name} failed: {err[-1] if err else done.returncode}")
        return done.stdout

    def _read(self, data: bytes) -> tuple[bytes, int]:
        with wave.open(io.BytesIO(data)) as wav:
            if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                raise RuntimeError(f"{self.name} wrote audio that is not 16-bit mono")
            return wav.readframes(wav.getnframes()), wav.getframerate()


def make_synthesizer(
    engine: str, voice: str = "", speed: int = 170, *, cache_dir: Path | None = None
) -> Synthesizer:
    """`engine`: auto (espeak-ng, else flite), espeak-ng, flite or piper. Raises
    ModelUnavailable naming the package to install (or ModelVerificationError for a Piper
    voice whose bytes are not the pinned ones). Blocking for piper (it verifies and loads
    the voice): call it from a worker thread."""
    if engine == "piper":
        return PiperSynthesizer.load(voice, speed, cache_dir)
    if engine in ("auto", "espeak-ng") and (exe := shutil.which("espeak-ng")):
        voice = voice or "en-us"
        return CommandSynthesizer(
            f"espeak-ng {voice}", (exe, "-v", voice, "-s", str(speed), "--stdin", "--stdout")
        )
    if engine in ("auto", "flite") and (exe := shutil.which("flite")):
        voice = voice or "slt"
        return CommandSynthesizer(
            f"flite {voice}", (exe, "-voice", voice, "-f", "/dev/stdin", "-o", "{out}")
        )
    wanted = "espeak-ng or flite" if engine == "auto" else engine
    raise ModelUnavailable(
        f"no text-to-speech program: install {wanted} (sudo apt-get install {wanted.split()[0]})"
    )
