"""Phrase recognisers for the wake sentinel: a short speech segment in, the text heard out.

Every recogniser takes PCM16 mono at 16 kHz (`RATE`) and the wake phrase (as a hint: a
prompt, a hotword, a grammar) and returns text; the sentinel decides whether that text is
the phrase (`foreman.audio.phrase_match`). Blocking engines run in a worker thread.

* `openai` — the transcription API (`foreman.io.transcription`), when a key is set.
* `ensemble` — Whisper, then pocketsphinx unless Whisper's text already ruled the phrase
  out; either hearing the phrase wakes unless the other vetoes it
  (`foreman.desk.ensemble_wake`). The default offline detector: on the benchmark's voices
  it wakes on 39 of 40 phrases and none of 24 near misses, at about 1.1 times Whisper's
  CPU (docs/benchmarks.md).
* `whisper` — faster-whisper with the packaged Whisper base model and the phrase as a
  hotword (`foreman.speech`): the offline detector without the `wake` extra.
* `pocketsphinx` — CMU's recogniser (model inside its wheel) in grammar mode: the phrase
  against filler words and its near misses, so it must choose. The cheapest (about a tenth
  of Whisper's CPU), and the one `auto` falls back to without the `offline` extra.

`build_recogniser` picks one from `[voice] wake_detector` and says in one line why a choice
cannot work (a missing package names its install command).
"""

from __future__ import annotations

import asyncio
import importlib.util
import tempfile
import threading
from pathlib import Path
from typing import Any, Final, Protocol

from foreman.audio.phrase_match import words
from foreman.config import Settings
from foreman.desk.ensemble_wake import NAME_CONTINUATIONS, EnsembleWake
from foreman.exceptions import ForemanError

__all__ = [
    "RATE",
    "PhraseRecogniser",
    "PocketsphinxGrammar",
    "RecogniserUnavailable",
    "build_recogniser",
]

RATE: Final = 16000


class RecogniserUnavailable(ForemanError):
    """The chosen recogniser cannot run here; the message names the fix."""


class PhraseRecogniser(Protocol):
    name: str

    async def hear(self, pcm16: bytes, phrase: str) -> str:
        """The text of `pcm16` (16 kHz mono); `phrase` is what to listen for."""
        ...

    async def aclose(self) -> None: ...


# Words the grammar may choose instead of the phrase: common short English words and the
# phrase's usual near misses, so that "hey jim" is not forced into "hey vim"; also the words
# that turn the name into another ("vin diesel", `NAME_CONTINUATIONS`), so the ensemble can
# see them.
_FILLERS: Final = (
    "a",
    "and",
    "are",
    "at",
    "be",
    "but",
    "call",
    "can",
    "close",
    "do",
    "file",
    "for",
    "get",
    "have",
    "he",
    "hello",
    "her",
    "hey",
    "hi",
    "him",
    "his",
    "how",
    "i",
    "in",
    "is",
    "it",
    "jim",
    "me",
    "mom",
    "my",
    "no",
    "now",
    "of",
    "okay",
    "on",
    "open",
    "play",
    "please",
    "say",
    "see",
    "set",
    "she",
    "so",
    "stop",
    "tell",
    "that",
    "the",
    "them",
    "then",
    "there",
    "this",
    "tim",
    "time",
    "to",
    "today",
    "up",
    "us",
    "vin",
    "we",
    "weather",
    "what",
    "when",
    "where",
    "who",
    "why",
    "win",
    "with",
    "yes",
    "you",
)


class PocketsphinxGrammar:
    """pocketsphinx with a JSGF grammar: any sequence of the phrase and filler words."""

    name = "pocketsphinx"

    def __init__(self, phrase: str) -> None:
        if importlib.util.find_spec("pocketsphinx") is None:
            raise RecogniserUnavailable(
                "pocketsphinx is not installed: pip install 'foreman-voice[wake]'"
            )
        self.phrase = phrase
        self._decoder: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        from pocketsphinx import Decoder, get_model_path

        model = Path(get_model_path())
        vocabulary = sorted({*_FILLERS, *NAME_CONTINUATIONS} - set(words(self.phrase)))
        phrase = " ".join(words(self.phrase))
        grammar = (
            "#JSGF V1.0;\ngrammar wake;\npublic <utterance> = (<item>)+;\n"
            f"<item> = {phrase} | {' | '.join(vocabulary)};\n"
        )
        with tempfile.NamedTemporaryFile("w", suffix=".jsgf", delete=False) as f:
            f.write(grammar)
            path = f.name
        try:
            return Decoder(
                hmm=str(model / "en-us" / "en-us"),
                dict=str(model / "en-us" / "cmudict-en-us.dict"),
                jsgf=path,
                # The lattice rescoring pass costs about a hundred times the search itself
                # (20 s instead of 0.15 s of CPU for a 3 s segment, docs/benchmarks.md) and
                # picks no better among the grammar's words.
                bestpath=False,
                loglevel="FATAL",
            )
        finally:
            Path(path).unlink(missing_ok=True)

    def hear_sync(self, pcm16: bytes) -> str:
        with self._lock:
            if self._decoder is None:
                self._decoder = self._load()
            d = self._decoder
            d.start_utt()
            d.process_raw(pcm16, full_utt=True)
            d.end_utt()
            hyp = d.hyp()
            return str(hyp.hypstr) if hyp is not None else ""

    async def hear(self, pcm16: bytes, phrase: str) -> str:
        return await asyncio.to_thread(self.hear_sync, pcm16)

    async def aclose(self) -> None:
        return None


def build_recogniser(settings: Settings) -> PhraseRecogniser:
    """The recogniser `[voice] wake_detector` asks for ("auto": the transcription API with a
    key, else the best offline one installed: the ensemble, Whisper, pocketsphinx).
    RecogniserUnavailable says why not."""
    voice = settings.voice
    choice = voice.wake_detector
    key = settings.realtime.api_key.get_secret_value()
    if choice == "openai" or (choice == "auto" and key):
        from foreman.io.transcription import OpenAITranscriber, TranscriptionError

        try:
            return OpenAITranscriber(
                voice.transcription_base_url,
                key,
                model=voice.transcription_model,
                api_key_hosts=settings.realtime.api_key_hosts,
                timeout_s=voice.transcription_timeout_s,
                sample_rate=RATE,
            )
        except TranscriptionError as exc:
            raise RecogniserUnavailable(str(exc)) from None
    if choice in ("ensemble", "auto"):
        whisper = _whisper(voice.wake_phrase)
        have_sphinx = importlib.util.find_spec("pocketsphinx") is not None
        if whisper is not None and have_sphinx:
            return EnsembleWake(voice.wake_phrase, whisper, PocketsphinxGrammar(voice.wake_phrase))
        if choice == "ensemble":
            missing = "Whisper" if whisper is None else "pocketsphinx"
            raise RecogniserUnavailable(
                f"the ensemble needs {missing}, which is not installed: "
                "pip install 'foreman-voice[offline,wake]'"
            )
    if choice in ("whisper", "auto"):
        whisper = _whisper(voice.wake_phrase)
        if whisper is not None:
            return whisper
        if choice != "auto":
            raise RecogniserUnavailable(
                "the Whisper recogniser is not installed: pip install 'foreman-voice[offline]'"
            )
    return PocketsphinxGrammar(voice.wake_phrase)


def _whisper(phrase: str) -> PhraseRecogniser | None:
    """The Whisper hotword recogniser when faster-whisper and its model are installed."""
    if importlib.util.find_spec("faster_whisper") is None:
        return None
    from foreman.desk.whisper_wake import WhisperHotword

    return WhisperHotword(phrase)
