"""The desk's sound devices through PortAudio (`sounddevice`, the `foreman[audio]` extra).

Device callbacks run in PortAudio's own threads. Nothing here blocks in them or touches the
event loop's objects from them: a capture callback copies its block and hands it to the loop
with `call_soon_threadsafe`; a playback callback asks a thread-safe `source` for exactly the
bytes it needs and never waits.

A device that cannot run at the rate asked for is opened at its own default rate and the
audio is resampled with soxr (`foreman.audio.convert`), only then.

Anything missing is a `SoundUnavailable` whose one line names the fix: no sounddevice (the
extra), no PortAudio library (the system package), no device, a device name that matches
nothing. The server runs on without audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from foreman.audio.convert import Converter, build_plan
from foreman.audio.formats import AudioFormat, Encoding
from foreman.exceptions import ForemanError

log = logging.getLogger("foreman.sound")

__all__ = [
    "Capture",
    "Device",
    "Playback",
    "SoundUnavailable",
    "list_devices",
    "resolve_device",
    "sounddevice",
]

INSTALL_EXTRA = "pip install 'foreman-voice[audio]'"
INSTALL_PORTAUDIO = "apt-get install libportaudio2 (macOS: brew install portaudio)"
Kind = Literal["input", "output"]


class SoundUnavailable(ForemanError):
    """No sound I/O here; the message says what to install or choose."""


_open_streams = 0
_streams_lock = threading.Lock()


def sounddevice() -> Any:
    """The `sounddevice` module, PortAudio loaded."""
    try:
        import sounddevice as sd
    except ImportError:
        raise SoundUnavailable(f"sounddevice is not installed: {INSTALL_EXTRA}") from None
    except OSError:  # sounddevice raises this when libportaudio cannot be loaded
        raise SoundUnavailable(f"the PortAudio library is missing: {INSTALL_PORTAUDIO}") from None
    return sd


@dataclass(frozen=True, slots=True)
class Device:
    index: int
    name: str
    host_api: str
    inputs: int
    outputs: int
    default_rate: int
    default_input: bool = False
    default_output: bool = False


def list_devices() -> list[Device]:
    """The devices PortAudio sees now (it lists them once, when it starts, so it is
    restarted when no stream is open). Several servers in one process (tests, a supervisor)
    may ask at once: PortAudio is restarted to re-read the list, so the restart and the
    reading hold one lock, or a reader meets a PortAudio that is not initialised."""
    sd = sounddevice()
    with _streams_lock:
        try:
            if _open_streams == 0:
                sd._terminate()
                sd._initialize()
            return _read_devices(sd)
        except sd.PortAudioError as exc:
            raise SoundUnavailable(f"PortAudio cannot list the devices: {exc}") from None


def _read_devices(sd: Any) -> list[Device]:
    apis = [a["name"] for a in sd.query_hostapis()]
    try:
        default_in, default_out = sd.default.device
    except Exception:  # no default device
        default_in = default_out = -1
    return [
        Device(
            index=i,
            name=str(d["name"]),
            host_api=apis[d["hostapi"]] if d["hostapi"] < len(apis) else "?",
            inputs=int(d["max_input_channels"]),
            outputs=int(d["max_output_channels"]),
            default_rate=int(d["default_samplerate"]),
            default_input=i == default_in,
            default_output=i == default_out,
        )
        for i, d in enumerate(sd.query_devices())
    ]


def resolve_device(choice: int | str, kind: Kind, devices: list[Device] | None = None) -> Device:
    """The device `choice` names (an index, or a case-insensitive part of a name; "" = the
    default, else the first that can `kind`). SoundUnavailable when none fits."""
    devices = list_devices() if devices is None else devices
    usable = [d for d in devices if (d.inputs if kind == "input" else d.outputs) > 0]
    if not usable:
        raise SoundUnavailable(
            f"no audio {kind} device found (`foreman devices` lists them; on a server "
            f"without a sound card, PulseAudio's null sink gives one)"
        )
    if choice == "":
        default = [d for d in usable if (d.default_input if kind == "input" else d.default_output)]
        return (default or usable)[0]
    if isinstance(choice, int):
        found = [d for d in usable if d.index == choice]
    else:
        found = [d for d in usable if choice.lower() in d.name.lower()]
    if not found:
        raise SoundUnavailable(
            f"no {kind} device matches [audio] {kind}_device = {choice!r} "
            f"(`foreman devices` lists them)"
        )
    return found[0]


def _opened(sd: Any, make: Callable[[int], Any], want_rate: int, device: Device) -> tuple[Any, int]:
    """Open at `want_rate`, else at the device's default rate (resampled by the caller).
    Under the lock `list_devices` restarts PortAudio with: never in the middle of an open."""
    global _open_streams
    with _streams_lock:
        try:
            stream, rate = make(want_rate), want_rate
        except sd.PortAudioError as first:
            if device.default_rate == want_rate:
                raise SoundUnavailable(f"cannot open {device.name!r}: {first}") from None
            try:
                stream, rate = make(device.default_rate), device.default_rate
            except sd.PortAudioError as exc:
                raise SoundUnavailable(f"cannot open {device.name!r}: {exc}") from None
        _open_streams += 1
    return stream, rate


def _closed(stream: Any) -> None:
    global _open_streams
    try:
        stream.stop()
        stream.close()
    except Exception as exc:  # a device unplugged mid-stream: nothing left to release
        log.debug("closing a sound stream: %r", exc)
    with _streams_lock:
        _open_streams -= 1


class Capture:
    """The microphone: PCM16 mono at `rate`, in blocks of `block_ms`, delivered on the loop
    to `deliver` (never in PortAudio's thread)."""

    def __init__(self, device: Device, rate: int, block_ms: int = 20) -> None:
        self.device = device
        self.rate = rate
        self.block_ms = block_ms
        self.device_rate = rate
        self.overflows = 0
        self.blocks = 0
        self._stream: Any = None
        self._convert: Converter | None = None

    def start(self, deliver: Callable[[bytes], None]) -> None:
        sd = sounddevice()
        loop = asyncio.get_running_loop()
        call_soon = loop.call_soon_threadsafe

        def callback(indata: Any, frames: int, time: Any, status: Any) -> None:
            if status.input_overflow:
                self.overflows += 1
            self.blocks += 1
            data = bytes(indata)
            if self._convert is not None:
                data = self._convert.convert(data)
            if data:
                # RuntimeError: the loop closed under a stream still stopping.
                with contextlib.suppress(RuntimeError):
                    call_soon(deliver, data)

        make = _mono_int16(sd.RawInputStream, self.device, self.block_ms, callback)
        self._stream, self.device_rate = _opened(sd, make, self.rate, self.device)
        if self.device_rate != self.rate:
            self._convert = build_plan(_pcm(self.device_rate), _pcm(self.rate))
        self._stream.start()

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            _closed(stream)


class Playback:
    """The speaker: every callback takes exactly `nbytes` of PCM16 at `device_rate` from
    `source(nbytes)`, which must return at once (it runs in PortAudio's thread)."""

    def __init__(self, device: Device, rate: int, block_ms: int = 20) -> None:
        self.device = device
        self.rate = rate
        self.block_ms = block_ms
        self.device_rate = rate
        self.underflows = 0
        self.callbacks = 0
        self._stream: Any = None

    def start(self, source: Callable[[int], bytes]) -> int:
        """Open and start; returns the rate the device runs at (convert to it before
        queueing audio for `source`)."""
        sd = sounddevice()

        def callback(outdata: Any, frames: int, time: Any, status: Any) -> None:
            if status.output_underflow:
                self.underflows += 1
            self.callbacks += 1
            outdata[:] = source(len(outdata))

        make = _mono_int16(sd.RawOutputStream, self.device, self.block_ms, callback)
        self._stream, self.device_rate = _opened(sd, make, self.rate, self.device)
        self._stream.start()
        return self.device_rate

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            _closed(stream)


def _mono_int16(
    stream_class: Any, device: Device, block_ms: int, callback: Callable[..., None]
) -> Callable[[int], Any]:
    """How to open one PortAudio stream of `stream_class` on `device` at a given rate."""

    def make(rate: int) -> Any:
        return stream_class(
            samplerate=rate,
            blocksize=rate * block_ms // 1000,
            device=device.index,
            channels=1,
            dtype="int16",
            callback=callback,
        )

    return make


def _pcm(rate: int) -> AudioFormat:
    return AudioFormat(Encoding.PCM16, rate)
