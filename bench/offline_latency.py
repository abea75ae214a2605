"""End of the caller's speech → first reply audio on the offline engine, split by stage.

Real espeak-ng questions go through the engine exactly as a call's audio does (Silero VAD,
Whisper base, the local LLM, espeak-ng), played in real time (20 ms frames on a schedule),
the synthesizer's silence trimmed so the clock starts at the last sound of the question:

    end of speech → first audio: the VAD's hangover (`[local] end_of_speech_ms` of silence
    ends the turn), speech to text, the LLM's first token and first sentence, its TTS

Stages are reported cumulatively from the end of speech. Speech to text starts
`[local] early_transcribe_ms` into the pause, so it overlaps the hangover; the engine with
it off (0: transcribe at the end of the turn) is run in the same process on the same
questions, alternately, as the baseline. A second baseline is the pipeline done one step
after another: transcribe, wait for the whole answer (no streaming), synthesize all of it.

    PYTHONPATH=src python bench/offline_latency.py                  # the packaged default
    PYTHONPATH=src python bench/offline_latency.py --llm smollm2-135m --concurrent 1 2 3
    PYTHONPATH=src python bench/offline_latency.py --first-turn     # a call's first turn
    PYTHONPATH=src python bench/offline_latency.py --compare window # Whisper's window

`--compare window` runs the engine with speech to text on Whisper's whole 30 s window (the
baseline) and on a window fitted to each utterance (`[local] stt_fitted_window`), early
transcription on for both, alternately, instead of early transcription off against on;
`--compare clock` without and with the clock note (`[local] clock_note`).

`--first-turn` measures what a phone call meets instead: each question is the first turn of
a fresh call whose system prompt (its caller's number) and tool list (the packaged tools)
are those of a call. Before: as the engine was (the model writes the greeting, no prompt
warm-up, the call's instructions in the first system message); after: fixed greeting words,
the warm-up at the call's start, the shared first system message. The question is played in
real time once the greeting has been heard.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from foreman.audio.formats import AudioFormat, Encoding
from foreman.backends import interface as b
from foreman.backends.local_engine import PCM16_16K, LocalEngineBackend
from foreman.backends.local_prompt import system_prompt
from foreman.backends.local_runtime import LocalRuntime
from foreman.config import Settings, settings_from_dict
from foreman.testing.speech import speak, trim_silence
from foreman.tools.request import ToolRequest

QUESTIONS = [
    "What is the capital of France?",
    "How many days are there in a week?",
    "Can you suggest a name for a black cat?",
    "What should I cook for dinner tonight?",
    "Why is the sky blue?",
]
GREETING_INSTRUCTION = "Greet the caller briefly and ask how you can help."
INSTRUCTIONS = "You are Foreman, a concise and friendly voice assistant. Keep answers short."
FRAME = PCM16_16K.bytes_for_ms(20)


def _options() -> b.BackendOptions:
    fmt = AudioFormat(Encoding.PCM16, 16_000)
    return b.BackendOptions("local", "", "", INSTRUCTIONS, fmt, fmt)


async def _one_turn(
    backend: LocalEngineBackend, events: asyncio.Queue[Any], pcm: bytes
) -> tuple[float, float]:
    """Play `pcm` and a silence in real time; (the end of speech, the first reply audio), on
    the monotonic clock."""
    audio = pcm + bytes(PCM16_16K.bytes_for_ms(backend.runtime.config.end_of_speech_ms + 300))
    speech_end = 0.0
    first_audio = None
    started = time.monotonic()
    for n, i in enumerate(range(0, len(audio), FRAME)):
        await asyncio.sleep(max(0.0, started + n * 0.02 - time.monotonic()))
        await backend.push_audio(audio[i : i + FRAME])
        if i < len(pcm) <= i + FRAME:
            speech_end = time.monotonic() - (i + FRAME - len(pcm)) / 2 / 16_000
        while not events.empty():
            if isinstance(events.get_nowait(), b.AssistantAudio) and first_audio is None:
                first_audio = time.monotonic()
    while not isinstance(event := await events.get(), b.AssistantIdle):
        if first_audio is None and isinstance(event, b.AssistantAudio):
            first_audio = time.monotonic()
    return speech_end, first_audio if first_audio is not None else time.monotonic()


async def streaming(runtime: LocalRuntime, questions: list[bytes]) -> list[dict[str, float]]:
    """Each question in a fresh conversation on the engine; its stages, in seconds from the
    end of the question's speech."""
    out = []
    for pcm in questions:
        backend = LocalEngineBackend(_options(), runtime)
        await backend.start()
        events: asyncio.Queue[Any] = asyncio.Queue()

        async def pump(be: LocalEngineBackend = backend, q: asyncio.Queue[Any] = events) -> None:
            async for event in be.events():
                q.put_nowait(event)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(pump())
            await backend.run(tg)
            speech_end, first_audio = await _one_turn(backend, events, pcm)
            await backend.close()
        t = backend.timings[-1]
        turn_end = t.started - speech_end
        row = {
            "hangover": turn_end,
            "stt": turn_end + (t.stt_s or 0.0),
            "first_token": turn_end + (t.first_token_s or 0.0),
            "first_sentence": turn_end + (t.first_sentence_s or 0.0),
            "first_audio": first_audio - speech_end,
            "early": float(t.early_stt),
        }
        print(f"  early={t.early_stt}: {_rounded(row)}", flush=True)
        out.append(row)
    return out


def _rounded(row: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in row.items()}


async def sequential(runtime: LocalRuntime, questions: list[bytes]) -> list[float]:
    """The baseline: STT, then the whole answer, then TTS of all of it."""
    out = []
    synthesizer = runtime.synthesizer
    assert synthesizer is not None
    for pcm in questions:
        started = time.monotonic()
        text = await runtime.transcriber.transcribe(pcm)
        # The same prompt the engine sends.
        system = system_prompt(_options())
        messages = [{"role": "system", "content": system}, {"role": "user", "content": text}]
        answer = await runtime.llm.complete(messages)
        await asyncio.to_thread(synthesizer.synthesize, answer.text or "Nothing.")
        out.append(time.monotonic() - started)
        print(f"  one after another: {out[-1]:.2f} s, {answer.text!r}", flush=True)
    return out


def _packaged_tools() -> tuple[dict[str, Any], ...]:
    import foreman
    from foreman.tools.spec import load_tool_specs

    specs = load_tool_specs(Path(foreman.__file__).parent / "defaults" / "tools.d")
    return tuple(spec.to_realtime() for spec in specs.values())


def _call_options(n: int, *, greeting: str | None) -> b.BackendOptions:
    """A phone call's options: a per-call system prompt and every packaged tool."""
    fmt = AudioFormat(Encoding.PCM16, 16_000)
    who = f"You are on a phone call with an unknown caller, number +1555010{n:04d}."
    return b.BackendOptions(
        "local",
        "",
        "",
        f"{INSTRUCTIONS} {who} When the conversation is over, say goodbye and call end_call.",
        fmt,
        fmt,
        tools=_packaged_tools(),
        greeting=greeting,
    )


async def _first_audio(events: asyncio.Queue[Any], started: float) -> float:
    """Seconds to the first audio (or to idle, if nothing was said); waits for idle."""
    seconds = None
    while not isinstance(event := await events.get(), b.AssistantIdle):
        if seconds is None and isinstance(event, b.AssistantAudio):
            seconds = time.monotonic() - started
    return seconds if seconds is not None else time.monotonic() - started


async def first_turn(
    settings: Settings, runtime: LocalRuntime, questions: list[bytes], *, before: bool, base: int
) -> tuple[list[float], list[float]]:
    """Each question as the first turn of a fresh call: (greeting delays, first audio).
    `before`: as the engine was: the model writes the greeting, no warm-up, the call's own
    instructions in the first system message."""
    runtime.config = settings.local.model_copy(update={"warm_prompt": not before})
    greetings, turns = [], []
    for n, pcm in enumerate(questions, start=base):
        backend = LocalEngineBackend(_call_options(n, greeting=None if before else ""), runtime)
        await backend.start()
        if before:
            backend._chat.shared_first = False
        events: asyncio.Queue[Any] = asyncio.Queue()

        async def pump(be: LocalEngineBackend = backend, q: asyncio.Queue[Any] = events) -> None:
            async for event in be.events():
                if isinstance(event, ToolRequest):  # a model may call a tool: it succeeds
                    await be.submit_tool_result(event.call_id, '{"ok": true}')
                q.put_nowait(event)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(pump())
            started = time.monotonic()
            await backend.run(tg)
            if before:
                await backend.add_note("instruction", GREETING_INSTRUCTION)
            greetings.append(await _first_audio(events, started))
            # The caller answers once the greeting is over, speaking in real time.
            audio = pcm + bytes(PCM16_16K.bytes_for_ms(runtime.config.end_of_speech_ms + 300))
            for i in range(0, len(audio), FRAME):
                await backend.push_audio(audio[i : i + FRAME])
                await asyncio.sleep(0.02)
            while not isinstance(await events.get(), b.AssistantIdle):
                pass
            await backend.close()
        t = backend.timings[-1]
        turns.append(t.first_audio_s or 0.0)
        label = "before" if before else "after"
        print(f"  {label}: greeting {greetings[-1]:.2f} s, turn {t}", flush=True)
    return greetings, turns


async def first_turn_report(settings: Settings, runtime: LocalRuntime, count: int) -> None:
    questions = [speak(q, 16_000) for q in QUESTIONS[:count]]
    await streaming(runtime, questions[:1])  # the model and Whisper are loaded and warm
    greet_before, before = await first_turn(settings, runtime, questions, before=True, base=0)
    greet_after, after = await first_turn(settings, runtime, questions, before=False, base=100)
    hangover = settings.local.end_of_speech_ms / 1000
    med = statistics.median
    load = os.getloadavg()[0]
    print(f"\nfirst turn of a call; {count} calls each; medians; load average {load:.1f}\n")
    print("| measure | before | after | after / before |")
    print("|---|---:|---:|---:|")
    gb, ga = med(greet_before), med(greet_after)
    print(f"| call start → greeting audio | {gb:.2f} | {ga:.2f} | {ga / gb:.3f} |")
    tb, ta = hangover + med(before), hangover + med(after)
    print(f"| end of speech → first audio, first turn | {tb:.2f} | {ta:.2f} | {ta / tb:.2f} |")
    for i, (was, now) in enumerate(zip(before, after, strict=True), start=1):
        row = f"| call {i}: end of speech → first audio | {hangover + was:.2f} |"
        print(f"{row} {hangover + now:.2f} | |")


async def concurrent(runtime: LocalRuntime, pcm: bytes, calls: int) -> float:
    """`calls` callers ask at the same moment; the median end of speech → first audio."""
    results = await asyncio.gather(*(streaming(runtime, [pcm]) for _ in range(calls)))
    return statistics.median(r[0]["first_audio"] for r in results)


@dataclass(frozen=True)
class Variant:
    label: str
    early_ms: int
    fitted_window: bool
    clock_note: bool = True

    def apply(self, settings: Settings, runtime: LocalRuntime) -> None:
        update = {"early_transcribe_ms": self.early_ms, "clock_note": self.clock_note}
        runtime.config = settings.local.model_copy(update=update)
        stt = runtime.transcriber
        stt.settings = replace(stt.settings, fitted_window=self.fitted_window)


def variants(settings: Settings, compare: str) -> tuple[Variant, Variant]:
    """(the baseline, the change) that `--compare` names."""
    early, fitted = settings.local.early_transcribe_ms, settings.local.stt_fitted_window
    if compare == "window":
        return Variant("30 s window", early, False), Variant("fitted window", early, True)
    if compare == "clock":
        return Variant("no clock note", early, fitted, False), Variant("clock note", early, fitted)
    return Variant("early off (0)", 0, fitted), Variant(f"early on ({early} ms)", early, fitted)


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="qwen2.5-coder-0.5b")
    parser.add_argument("--cache", type=Path, default=None, help="model cache directory")
    parser.add_argument("--concurrent", type=int, nargs="*", default=[])
    parser.add_argument("--questions", type=int, default=len(QUESTIONS))
    parser.add_argument("--rounds", type=int, default=2, help="of each variant, alternately")
    parser.add_argument("--first-turn", action="store_true", help="a call's first turn")
    comparisons = ("early", "window", "clock")
    parser.add_argument("--compare", choices=comparisons, default="early")
    args = parser.parse_args()
    settings = settings_from_dict({"local": {"llm": args.llm}, "chat": {"timeout_s": 600.0}})
    runtime = LocalRuntime(settings, cache_dir=args.cache)
    started = time.monotonic()
    await runtime.ready()
    print(f"loaded in {time.monotonic() - started:.2f} s: {runtime.components()}")
    if args.first_turn:
        await first_turn_report(settings, runtime, args.questions)
        return
    questions = [trim_silence(speak(q, 16_000)) for q in QUESTIONS[: args.questions]]
    await streaming(runtime, questions[:1])  # warm: the system prompt's cache, first calls
    before, after = variants(settings, args.compare)
    rows: dict[Variant, list[dict[str, float]]] = {before: [], after: []}
    for _ in range(args.rounds):  # alternately, so drift in the machine's load hits both
        for variant in (before, after):
            variant.apply(settings, runtime)
            rows[variant] += await streaming(runtime, questions)
    base = await sequential(runtime, questions)
    load = os.getloadavg()[0]
    count = len(questions) * args.rounds
    print(f"\nllm {args.llm}; {count} turns each; medians; load average {load:.1f}\n")
    print(f"| seconds after the end of speech | {before.label} | {after.label} |")
    print("|---|---:|---:|")
    for key, name in (
        ("hangover", "turn ended (VAD hangover)"),
        ("stt", "transcript ready (Whisper base, int8, greedy)"),
        ("first_token", "LLM first token"),
        ("first_sentence", "first sentence written"),
        ("first_audio", "**first audio**"),
    ):
        print(f"| {name} | {_median(rows[before], key):.2f} | {_median(rows[after], key):.2f} |")
    off, on = _median(rows[before], "first_audio"), _median(rows[after], "first_audio")
    print(f"| ratio, first audio | | **{on / off:.2f}** |")
    within = [sum(r["first_audio"] <= 1.2 for r in rows[v]) for v in (before, after)]
    print(f"| first audio within 1.2 s | {within[0]} of {count} | {within[1]} of {count} |")
    used = sum(r["early"] for r in rows[after])
    print(f"| turns whose early transcript was used | | {used:.0f} of {count} |")
    hangover = settings.local.end_of_speech_ms / 1000
    one_by_one = hangover + statistics.median(base)
    print(f"| one after another, no streaming (+ hangover) | {one_by_one:.2f} | |")
    after.apply(settings, runtime)
    for calls in args.concurrent:
        median = await concurrent(runtime, questions[0], calls)
        print(f"| {calls} simultaneous callers: median first audio | | {median:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
