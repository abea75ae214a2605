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
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field

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


async def run(detectors: list[str], voices: list[str]) -> dict[str, Tally]:
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
        for voice in voices:
            for group, texts in (("pos", POSITIVE), ("near", NEAR_MISS), ("ord", ORDINARY)):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detectors", default="ensemble,whisper,whisper1,pocketsphinx")
    parser.add_argument("--voices", default=",".join(FLITE_VOICES))
    args = parser.parse_args()
    voices = args.voices.split(",")
    if unknown := set(voices) - set(FLITE_VOICES):
        parser.error(f"unknown voices {sorted(unknown)}: choose from {', '.join(FLITE_VOICES)}")
    total = len(voices) * (len(POSITIVE) + len(NEAR_MISS) + len(ORDINARY))
    print(f"{total} utterances per detector", file=sys.stderr)
    print(report(asyncio.run(run(args.detectors.split(","), voices))))


if __name__ == "__main__":
    main()
