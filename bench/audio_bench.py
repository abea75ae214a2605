"""Audio toolkit benchmarks. A plain script, not a test. From the repository root:

    .venv/bin/python bench/audio_bench.py            # everything, markdown tables
    .venv/bin/python bench/audio_bench.py --only convert

Sections:
* convert   - per-20-ms-frame cost of each conversion plan (best of several repeats);
* resampler - soxr quality presets fed 20 ms frames: how much audio each holds back, SNR
              against whole-signal VHQ resampling on speech and on a sweep, image rejection
              (1 kHz tone 8k->24k) and alias rejection (1 kHz + 6 kHz 24k->8k),
              streamed-vs-batch difference, cost;
* vad       - EnergyVad and SileroVad cost per 20 ms of audio;
* playout   - JitterBuffer push/pop and PlaybackTracker sent/acknowledged per frame.
Real speech comes from espeak-ng via foreman.testing.speech.synthesize.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from foreman.audio import g711
from foreman.audio.convert import build_plan
from foreman.audio.formats import PCM16_24K, PCMA_8K, PCMU_8K, AudioFormat, Encoding
from foreman.audio.jitter import JitterBuffer
from foreman.audio.playback import PlaybackTracker
from foreman.audio.resample import QUALITIES, StreamResampler
from foreman.audio.vad import EnergyVad
from foreman.testing.speech import synthesize

TEXT = (
    "Hello, this is Foreman. I can check your calendar, send a message, or call someone back. "
    "What would you like me to do today?"
)
FRAME_MS = 20


def _best_us_per_call(fn: Callable[[], object], calls: int, repeat: int = 7) -> float:
    number = max(1, 2000 // max(calls, 1))
    best = min(timeit.repeat(fn, number=number, repeat=repeat))
    return best / number / calls * 1e6


def _source(fmt: AudioFormat) -> bytes:
    pcm = synthesize(TEXT, fmt.sample_rate)
    if fmt.encoding is Encoding.PCMU:
        return g711.pcm16_to_ulaw(pcm)
    if fmt.encoding is Encoding.PCMA:
        return g711.pcm16_to_alaw(pcm)
    return pcm


def _frames(data: bytes, fmt: AudioFormat) -> list[bytes]:
    n = fmt.bytes_for_ms(FRAME_MS)
    return [data[i : i + n] for i in range(0, len(data) - n + 1, n)]


# convert -------------------------------------------------------------------------------------
def bench_convert() -> None:
    pcm = {r: AudioFormat(Encoding.PCM16, r) for r in (8000, 16000, 24000, 48000)}
    cases = [
        ("passthrough µ-law (Twilio <-> model)", PCMU_8K, PCMU_8K),
        ("passthrough pcm16 24k", PCM16_24K, PCM16_24K),
        ("**caller->model: µ-law 8k -> pcm16 24k**", PCMU_8K, PCM16_24K),
        ("**model->caller: pcm16 24k -> µ-law 8k**", PCM16_24K, PCMU_8K),
        ("A-law 8k -> pcm16 24k", PCMA_8K, PCM16_24K),
        ("pcm16 24k -> A-law 8k", PCM16_24K, PCMA_8K),
        ("µ-law -> A-law (translate)", PCMU_8K, PCMA_8K),
        ("pcm16 8k -> µ-law 8k (encode only)", pcm[8000], PCMU_8K),
        ("µ-law 8k -> pcm16 8k (decode only)", PCMU_8K, pcm[8000]),
        ("pcm16 16k -> pcm16 24k (mic)", pcm[16000], PCM16_24K),
        ("pcm16 48k -> pcm16 24k (mic)", pcm[48000], PCM16_24K),
        ("pcm16 24k -> pcm16 48k (speaker)", PCM16_24K, pcm[48000]),
    ]
    print("### Per-frame conversion cost (20 ms frames)\n")
    print("| chain | steps | µs / frame | × real time |")
    print("|---|---|---:|---:|")
    for label, src, dst in cases:
        frames = _frames(_source(src), src)
        conv = build_plan(src, dst)
        convert = conv.convert

        def run(frames: list[bytes] = frames, convert: Callable[[bytes], bytes] = convert) -> None:
            for f in frames:
                convert(f)

        us = _best_us_per_call(run, len(frames))
        steps = ", ".join(getattr(conv, "steps", (type(conv).__name__.lower(),)))
        print(f"| {label} | {steps} | {us:.2f} | {FRAME_MS * 1000 / us:,.0f}× |")
    print()


# resampler -----------------------------------------------------------------------------------
def _snr(ref: np.ndarray, y: np.ndarray) -> float:
    n = min(len(ref), len(y))
    err = float(np.sum((y[:n] - ref[:n]) ** 2))
    return float(10 * np.log10(float(np.sum(ref[:n] ** 2)) / max(err, 1e-12)))


def _band_db(x: np.ndarray, rate: int, lo: float, hi: float, f0: float) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / rate)
    ref = spec[(f > f0 - 50) & (f < f0 + 50)].sum()
    return float(10 * np.log10(spec[(f >= lo) & (f <= hi)].sum() / ref + 1e-30))


def _sweep(rate: int, top: float) -> np.ndarray:
    t = np.arange(rate * 2) / rate
    f1 = 100.0
    k = np.log(top / f1) / 2
    return 8000 * np.sin(2 * np.pi * f1 * (np.exp(k * t) - 1) / k)


def _stream_stats(a: int, b: int, q: str, x16: np.ndarray) -> tuple[np.ndarray, float, float]:
    r = StreamResampler(a, b, q)
    n = a * FRAME_MS // 1000
    outs: list[bytes] = []
    held: list[float] = []
    fed = got = 0
    for i in range(0, len(x16), n):
        chunk = x16[i : i + n]
        o = r.process(chunk.tobytes())
        outs.append(o)
        fed += len(chunk)
        got += len(o) // 2
        held.append(fed * 1000 / a - got * 1000 / b)
    outs.append(r.flush())
    steady = held[5:]
    y = np.frombuffer(b"".join(outs), "<i2").astype(np.float64)
    return y, max(steady), float(np.mean(steady))


def bench_resampler() -> None:
    print("### Resampler: quality and latency (soxr 20 ms streaming)\n")
    print(
        "Hold = input fed minus output returned, in ms, over 20 ms frames (steady state): "
        "audio the resampler keeps back. SNR is against whole-signal `soxr.resample(VHQ)` of "
        "the same input, on espeak speech and on a 100 Hz → 0.45·min(rate) log sweep. "
        "Image: 1 kHz tone 8k→24k, energy in 4–12 kHz. Alias: 1 kHz + 6 kHz at 24k→8k, "
        "energy at 2 kHz. Stream = max |streamed − batch at the same quality| in LSB.\n"
    )
    print(
        "| quality | direction | hold max / mean (ms) | speech SNR (dB) | sweep SNR (dB) "
        "| image / alias (dB) | stream vs batch | µs / frame |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for q in QUALITIES:
        for a, b in [(8000, 24000), (24000, 8000), (16000, 24000), (48000, 24000)]:
            speech = np.frombuffer(synthesize(TEXT, a), "<i2")
            y, hmax, hmean = _stream_stats(a, b, q, speech)
            ref = soxr.resample(speech.astype(np.float64), a, b, quality="VHQ")
            same = soxr.resample(speech.astype(np.float32), a, b, quality=q)
            stream_diff = float(np.max(np.abs(y - np.clip(np.rint(same), -32768, 32767))))
            sw = np.clip(np.rint(_sweep(a, 0.45 * min(a, b))), -32768, 32767).astype("<i2")
            ysw, _, _ = _stream_stats(a, b, q, sw)
            sw_ref = soxr.resample(sw.astype(np.float64), a, b, quality="VHQ")
            extra = ""
            if (a, b) == (8000, 24000):
                t = np.arange(8000) / 8000
                x = (8000 * np.sin(2 * np.pi * 1000 * t)).astype("<i2").tobytes()
                yy = np.frombuffer(StreamResampler(a, b, q).process(x), "<i2").astype(float)
                extra = f"{_band_db(yy[2400:], b, 4100, 12000, 1000):.0f}"
            elif (a, b) == (24000, 8000):
                t = np.arange(24000) / 24000
                xx = 4000 * np.sin(2 * np.pi * 1000 * t) + 4000 * np.sin(2 * np.pi * 6000 * t)
                xb = xx.astype("<i2").tobytes()
                yy = np.frombuffer(StreamResampler(a, b, q).process(xb), "<i2").astype(float)
                extra = f"{_band_db(yy[800:], b, 1950, 2050, 1000):.0f}"
            frames = [speech[i : i + a // 50].tobytes() for i in range(0, len(speech), a // 50)]
            r = StreamResampler(a, b, q)

            def run(frames: list[bytes] = frames, r: StreamResampler = r) -> None:
                for f in frames:
                    r.process(f)

            us = _best_us_per_call(run, len(frames), repeat=5)
            print(
                f"| {q} | {a // 1000}k→{b // 1000}k | {hmax:.1f} / {hmean:.1f} | "
                f"{_snr(ref, y):.1f} | {_snr(sw_ref, ysw):.1f} | {extra} | {stream_diff:.0f} | "
                f"{us:.1f} |"
            )
    print()
    # The shipped defaults end to end on speech: 8k -> 24k (auto=QQ) -> 8k (auto=HQ).
    x = synthesize(TEXT, 8000)
    up, down = StreamResampler(8000, 24000), StreamResampler(24000, 8000)
    mid = b"".join(up.process(x[i : i + 320]) for i in range(0, len(x), 320)) + up.flush()
    back = b"".join(down.process(mid[i : i + 960]) for i in range(0, len(mid), 960))
    back += down.flush()
    xs = np.frombuffer(x, "<i2").astype(float)
    bs = np.frombuffer(back, "<i2").astype(float)
    print(f"Shipped defaults, speech 8k→24k→8k round trip: SNR {_snr(xs, bs):.1f} dB\n")
    print("Default upsampler (QQ) passband, 8k→24k, gain in dB:\n")
    row = []
    for f in (300, 1000, 2000, 2500, 3000, 3400, 3800):
        t = np.arange(8000) / 8000
        xt = (8000 * np.sin(2 * np.pi * f * t)).astype("<i2").tobytes()
        r = StreamResampler(8000, 24000)
        y = np.frombuffer(r.process(xt) + r.flush(), "<i2").astype(float)[3000:-3000]
        row.append(f"{f} Hz {20 * np.log10(np.sqrt(2) * y.std() / 8000):+.1f}")
    print(", ".join(row) + "\n")


# vad -----------------------------------------------------------------------------------------
def bench_vad() -> None:
    print("### VAD cost\n")
    print("| detector | rate | µs per 20 ms of audio | × real time |")
    print("|---|---|---:|---:|")
    for rate in (8000, 16000, 24000):
        data = synthesize(TEXT, rate)
        frames = [data[i : i + rate // 25] for i in range(0, len(data), rate // 25)]
        vad = EnergyVad(rate)

        def run(frames: list[bytes] = frames, vad: EnergyVad = vad) -> None:
            for f in frames:
                vad.process(f)

        us = _best_us_per_call(run, len(frames), repeat=5)
        print(f"| EnergyVad | {rate} | {us:.1f} | {20000 / us:,.0f}× |")
    try:
        from foreman.audio.silero import SileroUnavailable, SileroVad
    except ImportError:  # pragma: no cover
        return
    for rate in (8000, 16000, 24000):
        data = synthesize(TEXT, rate)
        frames = [data[i : i + rate // 25] for i in range(0, len(data), rate // 25)]
        try:
            sv = SileroVad(rate)
        except SileroUnavailable as exc:
            print(f"| SileroVad | {rate} | unavailable: {exc} | |")
            continue

        def run_s(frames: list[bytes] = frames, sv: SileroVad = sv) -> None:
            for f in frames:
                sv.process(f)

        us = _best_us_per_call(run_s, len(frames), repeat=3)
        print(f"| SileroVad (onnxruntime, 1 thread) | {rate} | {us:.1f} | {20000 / us:,.0f}× |")
    print()


# playout -------------------------------------------------------------------------------------
def bench_playout() -> None:
    print("### Playout bookkeeping\n")
    print("| operation | µs per 20 ms frame |")
    print("|---|---:|")
    data = _source(PCMU_8K)
    frames = _frames(data, PCMU_8K)
    jb = JitterBuffer(PCMU_8K)

    def run_jb() -> None:
        for f in frames:
            jb.push(f)
            jb.pop_frame()

    print(f"| JitterBuffer push + pop_frame | {_best_us_per_call(run_jb, len(frames)):.2f} |")

    def run_tr() -> None:
        t = PlaybackTracker(PCMU_8K)
        for f in frames:
            m = t.sent("item_1", 0, len(f))
            t.acknowledged(m.name)

    print(f"| PlaybackTracker sent + acknowledged | {_best_us_per_call(run_tr, len(frames)):.2f} |")
    print()


SECTIONS = {
    "convert": bench_convert,
    "resampler": bench_resampler,
    "vad": bench_vad,
    "playout": bench_playout,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=sorted(SECTIONS), action="append")
    args = ap.parse_args()
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, numpy {np.__version__}, soxr {soxr.__version__}, "
        f"load average {os.getloadavg()[0]:.2f} (other work on the machine inflates µs)\n"
    )
    for name in args.only or list(SECTIONS):
        SECTIONS[name]()


if __name__ == "__main__":
    main()
