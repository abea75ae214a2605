"""Wake-phrase accuracy: hits and false triggers over synthesised utterances, per detector.

Every utterance is spoken by flite's four usable voices and runs through the sentinel's real
path (`WakeSentinel` segments it, the recogniser hears each segment, the tolerant matcher
decides). Three groups:

* the phrase alone, and inside sentences (first, in the middle, at the end): must wake;
* near misses ("hey jim", "hey him", "hey tim", "okay vim", "hey vin diesel", ...): must not;
* ordinary sentences: must not (their length gives the false triggers per hour of speech).

Detectors: `pocketsphinx` (grammar mode; the baseline), `whisper1` (Whisper base with the
phrase as hotword, one pass), `whisper` (the shipped recogniser: one pass, plus a second look
at the segment's start unless the text shows a near miss), `ensemble` (the shipped Whisper,
then pocketsphinx unless Whisper's text already vetoed; either hearing the phrase wakes
unless the other heard a clear near miss: `foreman.desk.ensemble_wake`).

    PYTHONPATH=src python bench/wake_bench.py \
        [--detectors ensemble,whisper,whisper1,pocketsphinx] [--voices slt,rms,awb,kal16]

`--held-out` runs a second set of the same three groups instead, written after the
detectors' rules were settled and never used to tune them (new sentences around the phrase,
other near misses, other ordinary sentences): how well the rules carry over.

`--hour` measures false triggers per hour instead: `--minutes` (default 60) of ordinary
continuous speech (`ordinary_speech`: paragraphs in turn by the voices) streamed through one
sentinel per detector in 20 ms frames, as the microphone feeds it, with the shipped cooldown;
every wake-up is a false trigger. `--cache FILE` keeps each engine's text per segment, so a
rerun (another detector sharing an engine, a changed decision rule) does not recognise the
same audio twice:

    PYTHONPATH=src nice -n 10 python bench/wake_bench.py --hour --minutes 60 \
        --detectors whisper,pocketsphinx,ensemble --cache wake-hour.json
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ordinary_speech import speech_stream

from foreman.audio.wake import NotThePhrase, Recognise, WakeSentinel, Woken
from foreman.desk.ensemble_wake import EnsembleWake
from foreman.desk.recognisers import RATE, PhraseRecogniser, PocketsphinxGrammar
from foreman.desk.whisper_wake import WhisperHotword
from foreman.testing.voices import FLITE_VOICES, flite_speech, with_silence

PHRASE = "hey vim"
POSITIVE = [
    "hey vim",
    "hey vim, open the file",
    "hey vim what time is it",
    "hey vim set a timer for ten minutes",
    "hey vim what's on my calendar today",
    "hey vim call my mother",
    "okay so hey vim what time is it",
    "I think hey vim is a good name",
    "listen, hey vim, read my messages",
    "well then hey vim",
]
NEAR_MISS = [
    "hey jim",
    "hey him",
    "hey tim",
    "okay vim",
    "hey vin diesel",
    "hey jim, open the file",
]
ORDINARY = [
    "what is the weather like today",
    "please call my mother tomorrow",
    "have them send the file",
    "I like my editor very much",
    "the meeting is at three in the afternoon",
    "can you turn the lights off",
    "she said hello to everyone at the party",
    "we need to buy milk and bread",
    "the train was late again this morning",
    "give me a minute to think about it",
    "my favourite editor has a lot of keyboard shortcuts",
    "they went to the beach on saturday",
]
# A second set, written after the detectors' rules were settled and never used to tune them:
# new sentences around the phrase, other near misses of the same kinds, other ordinary
# sentences (`--held-out`).
HELD_OUT_POSITIVE = [
    "hey vim, turn on the lights",
    "hey vim remind me to water the plants",
    "so hey vim, what's the weather",
    "hey vim play some music",
    "I said hey vim twice already",
    "hey vim, how long is my commute",
    "right, hey vim, cancel that",
    "hey vim send a message to Sam",
    "um, hey vim",
    "hey vim are you there",
]
HELD_OUT_NEAR_MISS = [
    "hey kim",
    "hey bim",
    "hey vince",
    "hey jim, turn on the lights",
    "okay vim, play some music",
    "hey him, are you there",
]
HELD_OUT_ORDINARY = [
    "the lights in the hallway are still on",
    "remind me to water the plants tomorrow",
    "play some music while we cook",
    "how long is the drive to the coast",
    "send the invoice to the client today",
    "I will be home a little after six",
    "the shop closes early on sundays",
    "could you check the oven in ten minutes",
    "he left his umbrella at the station",
    "we watched a film about whales last night",
    "the vending machine ate my coins again",
    "she is learning to play the violin",
]


@dataclass
class Tally:
    hits: int = 0
    positives: int = 0
    near_false: int = 0
    near: int = 0
    ordinary_false: int = 0
    ordinary: int = 0
    ordinary_s: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    misses: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)


BASELINE: dict[str, Tally] = {}  # the baseline's tally, once it has run


async def wakes(recogniser: PhraseRecogniser, pcm16: bytes) -> tuple[bool, list[str]]:
    sentinel = WakeSentinel(PHRASE, RATE, cooldown_s=0)
    heard: list[str] = []
    frame = RATE * 20 // 1000 * 2
    jobs: list[Recognise] = []
    for i in range(0, len(pcm16), frame):
        jobs += [e for e in sentinel.feed(pcm16[i : i + frame], 0.0) if isinstance(e, Recognise)]
    for job in jobs:
        text = await recogniser.hear(job.audio, PHRASE)
        verdict = getattr(recogniser, "last", None)  # the ensemble says why
        heard.append(f"{text} ({verdict.reason})" if verdict is not None else text)
        outcome = sentinel.heard(job.segment, text, 1.0)
        if isinstance(outcome, Woken):
            return True, heard
        assert outcome is None or isinstance(outcome, NotThePhrase)
    return False, heard


class OnePass:
    """Whisper with the hotword, the whole segment once (no second look)."""

    name = "whisper1"

    def __init__(self, inner: WhisperHotword) -> None:
        self.inner = inner

    async def hear(self, pcm16: bytes, phrase: str) -> str:
        return await self.inner.transcriber.transcribe(pcm16, hotwords=self.inner.hotword)

    async def aclose(self) -> None:
        return None


async def run(detectors: list[str], voices: list[str], held_out: bool) -> dict[str, Tally]:
    whisper = WhisperHotword(PHRASE)
    sphinx = PocketsphinxGrammar(PHRASE)
    ensemble = EnsembleWake(PHRASE, whisper, sphinx)
    made: dict[str, PhraseRecogniser] = {
        "ensemble": ensemble,
        "pocketsphinx": sphinx,
        "whisper1": OnePass(whisper),
        "whisper": whisper,
    }
    if any(d.startswith("whisper") or d == "ensemble" for d in detectors):
        await whisper.load()
    results: dict[str, Tally] = {}
    for name in detectors:
        recogniser = made[name]
        tally = results[name] = Tally()
        if name == "pocketsphinx":
            BASELINE[name] = tally
        wall, cpu = time.perf_counter(), time.process_time()
        groups = (
            (("pos", HELD_OUT_POSITIVE), ("near", HELD_OUT_NEAR_MISS), ("ord", HELD_OUT_ORDINARY))
            if held_out
            else (("pos", POSITIVE), ("near", NEAR_MISS), ("ord", ORDINARY))
        )
        for voice in voices:
            for group, texts in groups:
                for text in texts:
                    speech = flite_speech(text, voice, RATE)
                    woke, heard = await wakes(recogniser, with_silence(speech, RATE))
                    label = f"{voice}: {text!r} -> {heard}"
                    if group == "pos":
                        tally.positives += 1
                        tally.hits += woke
                        if not woke:
                            tally.misses.append(label)
                    elif group == "near":
                        tally.near += 1
                        tally.near_false += woke
                        if woke:
                            tally.false.append(label)
                    else:
                        tally.ordinary += 1
                        tally.ordinary_false += woke
                        tally.ordinary_s += len(speech) / 2 / RATE
                        if woke:
                            tally.false.append(label)
        tally.wall_s = time.perf_counter() - wall
        tally.cpu_s = time.process_time() - cpu
        if name == "ensemble":
            print(f"ensemble ran pocketsphinx on {ensemble.sphinx_runs} segments", file=sys.stderr)
        print(report({name: tally}), file=sys.stderr, flush=True)  # as it goes: runs are long
    return results


def report(results: dict[str, Tally]) -> str:
    base = results.get("pocketsphinx") or BASELINE.get("pocketsphinx")
    lines = [
        "| detector | hits | near misses rejected | ordinary sentences rejected | "
        "hit rate vs baseline | CPU s per utterance |",
        "|---|---|---|---|---|---|",
    ]
    for name, t in results.items():
        n = t.positives + t.near + t.ordinary
        ratio = f"{(t.hits / base.hits):.2f}×" if base and base.hits else "—"
        lines.append(
            f"| {name} | {t.hits}/{t.positives} ({100 * t.hits / t.positives:.0f}%) | "
            f"{t.near - t.near_false}/{t.near} | {t.ordinary - t.ordinary_false}/{t.ordinary} "
            f"({t.ordinary_s:.0f} s of speech) | {ratio} | {t.cpu_s / n:.2f} |"
        )
    out = ["\n".join(lines)]
    for name, t in results.items():
        out.append(f"\n{name} misses ({len(t.misses)}):\n" + "\n".join(f"- {m}" for m in t.misses))
        out.append(
            f"{name} false triggers ({len(t.false)}):\n" + "\n".join(f"- {m}" for m in t.false)
        )
    return "\n".join(out)


class Cached:
    """An engine whose text for a segment is kept (by the segment's audio); CPU time is
    counted only for the segments it did recognise."""

    def __init__(self, inner: PhraseRecogniser, store: dict[str, str]) -> None:
        self.name = inner.name
        self.inner = inner
        self.store = store
        self.runs = 0
        self.cpu_s = 0.0
        self.audio_s = 0.0

    async def hear(self, pcm16: bytes, phrase: str) -> str:
        key = f"{self.name}:{hashlib.sha1(pcm16).hexdigest()}"
        if key not in self.store:
            cpu = time.process_time()
            self.store[key] = await self.inner.hear(pcm16, phrase)
            self.cpu_s += time.process_time() - cpu
            self.runs += 1
            self.audio_s += len(pcm16) / 2 / RATE
        return self.store[key]

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class HourTally:
    segments: int = 0
    triggers: list[str] = field(default_factory=list)


HOUR_DETECTORS = ("whisper", "pocketsphinx", "ensemble")  # engines first: the ensemble reuses


async def hour(
    detectors: list[str],
    voices: list[str],
    minutes: float,
    store: dict[str, str],
    save: Callable[[], None],
) -> str:
    whisper = WhisperHotword(PHRASE)
    await whisper.load()
    engines = {
        "whisper": Cached(whisper, store),
        "pocketsphinx": Cached(PocketsphinxGrammar(PHRASE), store),
    }
    ensemble = EnsembleWake(PHRASE, engines["whisper"], engines["pocketsphinx"])
    made: dict[str, PhraseRecogniser] = {**engines, "ensemble": ensemble}
    order = [d for d in HOUR_DETECTORS if d in detectors]
    sentinels = {d: WakeSentinel(PHRASE, RATE) for d in order}  # the shipped cooldown
    tallies = {d: HourTally() for d in order}
    frame = RATE * 20 // 1000 * 2
    fed = 0  # samples: the stream's clock
    speech_s = 0.0
    next_report = 300.0
    wall = time.perf_counter()

    def summary() -> str:
        hours = speech_s / 3600
        lines = [
            f"{speech_s / 60:.1f} min of speech ({fed / RATE / 60:.1f} min with pauses), "
            f"{time.perf_counter() - wall:.0f} s wall",
            "| detector | segments | false triggers | per hour of speech | CPU s per segment |",
            "|---|---|---|---|---|",
        ]
        for name in order:
            t = tallies[name]
            if name == "ensemble":
                w, s = engines["whisper"], engines["pocketsphinx"]
                cpu = w.cpu_s / max(w.runs, 1) + s.cpu_s / max(
                    s.runs, 1
                ) * ensemble.sphinx_runs / max(t.segments, 1)
            else:
                e = engines[name]
                cpu = e.cpu_s / max(e.runs, 1)
            lines.append(
                f"| {name} | {t.segments} | {len(t.triggers)} | "
                f"{len(t.triggers) / hours if hours else 0:.2f} | {cpu:.3f} |"
            )
        for name, e in engines.items():
            if e.runs:
                rtf = e.cpu_s / e.audio_s
                lines.append(f"{name}: {e.runs} recognised, {rtf:.3f} CPU s per s of audio")
        lines.append(f"ensemble ran pocketsphinx on {ensemble.sphinx_runs} segments")
        for name in order:
            lines += [f"{name} false trigger: {t}" for t in tallies[name].triggers]
        return "\n".join(lines)

    for piece in speech_stream(voices, minutes * 60, RATE):
        speech_s += piece.speech_s
        for i in range(0, len(piece.pcm16), frame):
            chunk = piece.pcm16[i : i + frame]
            fed += len(chunk) // 2
            now = fed / RATE
            for name in order:
                sentinel = sentinels[name]
                for event in sentinel.feed(chunk, now):
                    if not isinstance(event, Recognise):
                        continue
                    tallies[name].segments += 1
                    text = await made[name].hear(event.audio, PHRASE)
                    outcome = sentinel.heard(event.segment, text, now)
                    if isinstance(outcome, Woken):
                        tallies[name].triggers.append(
                            f"{now:.1f} s, {piece.voice} saying {piece.text!r}: {text!r}"
                        )
        if speech_s >= next_report:
            next_report += 300.0
            print(summary(), file=sys.stderr, flush=True)
            save()
    save()
    return summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--detectors", help="default: ensemble,whisper,whisper1,pocketsphinx (--hour: no whisper1)"
    )
    parser.add_argument("--voices", default=",".join(FLITE_VOICES))
    parser.add_argument("--hour", action="store_true", help="false triggers per hour of speech")
    parser.add_argument("--held-out", action="store_true", help="the set not used for tuning")
    parser.add_argument("--minutes", type=float, default=60.0, help="--hour: minutes of speech")
    parser.add_argument("--cache", type=Path, help="--hour: keep each engine's texts here")
    args = parser.parse_args()
    voices = args.voices.split(",")
    if unknown := set(voices) - set(FLITE_VOICES):
        parser.error(f"unknown voices {sorted(unknown)}: choose from {', '.join(FLITE_VOICES)}")
    if args.hour:
        detectors = args.detectors.split(",") if args.detectors else list(HOUR_DETECTORS)
        if unknown := set(detectors) - set(HOUR_DETECTORS):
            parser.error(f"--hour runs {', '.join(HOUR_DETECTORS)}, not {sorted(unknown)}")
        cache: Path | None = args.cache
        store: dict[str, str] = json.loads(cache.read_text()) if cache and cache.exists() else {}

        def save() -> None:
            if cache is not None:
                cache.write_text(json.dumps(store))

        print(asyncio.run(hour(detectors, voices, args.minutes, store, save)))
        return
    total = len(voices) * (len(POSITIVE) + len(NEAR_MISS) + len(ORDINARY))
    print(f"{total} utterances per detector", file=sys.stderr)
    detectors = (args.detectors or "ensemble,whisper,whisper1,pocketsphinx").split(",")
    print(report(asyncio.run(run(detectors, voices, args.held_out))))


if __name__ == "__main__":
    main()
