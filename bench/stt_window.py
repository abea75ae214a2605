"""Speech to text on a fitted window against Whisper's whole 30 s window: accuracy and cost.

The same utterances go through the packaged Whisper base model twice, once as faster-whisper
does it (every call padded to 30 s) and once on a window fitted to the utterance
(`foreman.speech.whisper_window`): word error rate against the text that was spoken, and
CPU seconds per utterance (process time, so other work on the machine changes it little).

    PYTHONPATH=src python bench/stt_window.py                    # 120 utterances
    PYTHONPATH=src python bench/stt_window.py --sentences 20 --min-frames 1500

Utterances: everyday sentences from `bench/ordinary_speech.py`, each spoken by two of
flite's voices in turn, and five questions by espeak-ng, the synthesizer's silence trimmed
and 300 ms of silence after each (as the engine's early transcription sees a turn).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from offline_latency import QUESTIONS
from ordinary_speech import sentences

from foreman.speech import whisper_window
from foreman.speech.whisper import WhisperSettings, WhisperTranscriber
from foreman.testing.speech import speak, trim_silence, word_errors
from foreman.testing.voices import FLITE_VOICES, flite_speech

RATE = 16_000


def utterances(count: int) -> list[tuple[str, str, bytes]]:
    """(text, voice, PCM16 at 16 kHz) for `count` sentences × 2 voices and the questions."""
    out = []
    for i, text in enumerate(itertools.islice(sentences(), count)):
        for voice in (FLITE_VOICES[i % 4], FLITE_VOICES[(i + 1) % 4]):
            out.append((text, voice, flite_speech(text, voice, RATE)))
    out += [(q, "espeak-ng", speak(q, RATE)) for q in QUESTIONS]
    pause = bytes(RATE * 2 * 3 // 10)
    return [(text, voice, trim_silence(pcm) + pause) for text, voice, pcm in out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=60)
    parser.add_argument("--min-frames", type=int, default=whisper_window.MIN_FRAMES)
    parser.add_argument("--show", action="store_true", help="print every transcript that differs")
    args = parser.parse_args()
    whisper_window.MIN_FRAMES = args.min_frames
    full = WhisperTranscriber(settings=WhisperSettings(fitted_window=False))
    fitted = WhisperTranscriber(settings=WhisperSettings(fitted_window=True))
    full.load_sync()
    fitted.load_sync()
    tally = {"30 s window": [0, 0, 0.0], "fitted window": [0, 0, 0.0]}
    items = utterances(args.sentences)
    for text, voice, pcm in items:
        heard = {}
        for name, model in (("30 s window", full), ("fitted window", fitted)):
            started = time.process_time()
            heard[name] = model.transcribe_sync(pcm)
            tally[name][2] += time.process_time() - started
            edits, count = word_errors(text, heard[name])
            tally[name][0] += edits
            tally[name][1] += count
        if args.show and len(set(heard.values())) > 1:
            print(f"{voice:9} {text!r}: {heard}")
    print(f"{len(items)} utterances, fitted window at least {args.min_frames} frames")
    print("| | word error rate | CPU s per utterance |")
    print("|---|---:|---:|")
    for name, (edits, count, cpu) in tally.items():
        print(f"| {name} | {edits / count:.3f} ({edits}/{count}) | {cpu / len(items):.3f} |")
    ratio = tally["fitted window"][2] / tally["30 s window"][2]
    print(f"CPU ratio fitted / 30 s: {ratio:.2f}")


if __name__ == "__main__":
    main()
