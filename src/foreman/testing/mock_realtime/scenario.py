"""Scripted replies: which reply the mock model gives to which user turn.

A `Scenario` is an ordered list of `Rule`s. When a response starts, the mock describes what
triggered it as a `Turn` (the last user text, the n-th audio turn, the tool whose output was just
added, or nothing) and the first rule whose `Match` fits gives the `Reply`. With no match, a
built-in reply is used (it echoes user text: "You said: ...").

Build one in Python::

    Scenario([
        Rule(Match.user_text("weather"),
             Reply.say("Let me check.").then(Call.of("get_weather", {"city": "Paris"}))),
        Rule(Match.tool("get_weather"), Reply.say("It is sunny in Paris.")),
        Rule(Match.audio(1), Reply.say("Hello there!", pace=1.0)),
        Rule(Match.any(), Reply.text("Default answer.")),
    ])

or load it with `Scenario.from_file(path)` (JSON or TOML; the format is documented in
`foreman.testing.mock_realtime`'s module docstring and docs/mock-realtime.md).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Pace = Literal["burst"] | float


@dataclass(frozen=True, slots=True)
class Say:
    """An assistant message: audio plus transcript (or text in a text-only session)."""

    text: str


@dataclass(frozen=True, slots=True)
class Text:
    """An assistant message as `output_text`, whatever the session's modality."""

    text: str


@dataclass(frozen=True, slots=True)
class Call:
    """A function call; `arguments` is the JSON string the model streams."""

    name: str
    arguments: str = "{}"

    @classmethod
    def of(cls, name: str, arguments: Mapping[str, Any] | str | None = None) -> Call:
        if arguments is None:
            return cls(name)
        args = arguments if isinstance(arguments, str) else json.dumps(dict(arguments))
        return cls(name, args)


Step = Say | Text | Call


@dataclass(frozen=True, slots=True, init=False)
class Reply:
    """What one response contains, in order, and how it is streamed.

    `chunk_ms`: audio per `response.output_audio.delta`. `pace`: "burst" sends as fast as the
    socket takes it (the real service is much faster than real time); a number is a real-time
    factor (1.0 = real time, 2.0 = twice as fast). `delay_ms`: wait before the first delta.
    """

    steps: tuple[Step, ...]
    chunk_ms: int
    pace: Pace
    delay_ms: int

    def __init__(
        self, *steps: Step, chunk_ms: int = 100, pace: Pace = "burst", delay_ms: int = 0
    ) -> None:
        if chunk_ms <= 0:
            raise ValueError(f"chunk_ms must be positive, got {chunk_ms}")
        if pace != "burst" and (not isinstance(pace, int | float) or pace <= 0):
            raise ValueError(f"pace must be 'burst' or a positive real-time factor, got {pace!r}")
        if delay_ms < 0:
            raise ValueError(f"delay_ms must be >= 0, got {delay_ms}")
        object.__setattr__(self, "steps", tuple(steps))
        object.__setattr__(self, "chunk_ms", int(chunk_ms))
        object.__setattr__(self, "pace", pace if pace == "burst" else float(pace))
        object.__setattr__(self, "delay_ms", int(delay_ms))

    @classmethod
    def say(cls, text: str, **options: Any) -> Reply:
        return cls(Say(text), **options)

    @classmethod
    def text(cls, text: str, **options: Any) -> Reply:
        return cls(Text(text), **options)

    @classmethod
    def call(
        cls, name: str, arguments: Mapping[str, Any] | str | None = None, **options: Any
    ) -> Reply:
        return cls(Call.of(name, arguments), **options)

    @classmethod
    def function_call(cls, name: str, arguments_json: str = "{}", **options: Any) -> Reply:
        """A reply that is one function call with `arguments_json` streamed as given."""
        return cls(Call(name, arguments_json), **options)

    def then(self, *steps: Step) -> Reply:
        """This reply with more steps appended (e.g. `Reply.say("One moment").then(Call...)`)."""
        return Reply(
            *self.steps, *steps, chunk_ms=self.chunk_ms, pace=self.pace, delay_ms=self.delay_ms
        )


@dataclass(frozen=True, slots=True)
class Turn:
    """What triggered a response, as the scenario sees it."""

    kind: Literal["text", "audio", "tool_output", "none"]
    text: str | None = None  # user text, or an audio turn's transcript
    audio_turn: int | None = None
    tool_name: str | None = None
    instructions: str | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """Conditions on a `Turn`; every condition given must hold. No condition = any turn."""

    text: str | None = None
    audio_turn: int | None = None
    after_tool: str | None = None
    instructions: str | None = None

    @classmethod
    def any(cls) -> Match:
        return cls()

    @classmethod
    def user_text(cls, substring: str) -> Match:
        return cls(text=substring)

    @classmethod
    def audio(cls, n: int) -> Match:
        return cls(audio_turn=n)

    @classmethod
    def tool(cls, name: str) -> Match:
        return cls(after_tool=name)

    def matches(self, turn: Turn) -> bool:
        if self.text is not None and (
            turn.kind not in ("text", "audio")
            or self.text.casefold() not in (turn.text or "").casefold()
        ):
            return False
        if self.audio_turn is not None and (
            turn.kind != "audio" or turn.audio_turn != self.audio_turn
        ):
            return False
        if self.after_tool is not None and (
            turn.kind != "tool_output" or turn.tool_name != self.after_tool
        ):
            return False
        return self.instructions is None or (
            self.instructions.casefold() in (turn.instructions or "").casefold()
        )


@dataclass(frozen=True, slots=True)
class Rule:
    """`match` may be a `Match`, a string (user text substring) or None (any turn)."""

    match: Match
    reply: Reply
    times: int | None = None  # fire at most this many times per session (None = always)

    def __post_init__(self) -> None:
        match: object = self.match
        if match is None:
            object.__setattr__(self, "match", Match())
        elif isinstance(match, str):
            object.__setattr__(self, "match", Match(text=match))
        elif not isinstance(match, Match):
            raise TypeError(f"Rule.match must be a Match, a string or None, not {match!r}")
        if self.times is not None and self.times < 1:
            raise ValueError(f"Rule.times must be >= 1, got {self.times}")


def default_reply(turn: Turn) -> Reply:
    """The reply when no rule matches: short, spoken, and says what it heard."""
    if turn.kind == "text":
        return Reply.say(f"You said: {turn.text}")
    if turn.kind == "audio":
        return Reply.say("I heard you. This is the Foreman mock server.")
    if turn.kind == "tool_output":
        return Reply.say("Done.")
    return Reply.say("Hello! How can I help you today?")


@dataclass(slots=True)
class Scenario:
    """Rules in order, plus `transcripts`: audio turn n (1-based) -> what the user "said", used
    for input transcription events and for `Match.text` on audio turns."""

    rules: list[Rule] = field(default_factory=list)
    transcripts: dict[int, str] = field(default_factory=dict)

    def __init__(
        self, rules: Iterable[Rule] = (), transcripts: Mapping[int, str] | None = None
    ) -> None:
        self.rules = list(rules)
        self.transcripts = dict(transcripts or {})

    def choose(self, turn: Turn, hits: dict[int, int]) -> Reply:
        """The reply for `turn`; `hits` counts rule firings for this session (updated here)."""
        for index, rule in enumerate(self.rules):
            if rule.times is not None and hits.get(index, 0) >= rule.times:
                continue
            if rule.match.matches(turn):
                hits[index] = hits.get(index, 0) + 1
                return rule.reply
        return default_reply(turn)

    # --- files ---------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path) -> Scenario:
        """Load a JSON (`.json`) or TOML (any other suffix) scenario. Raises ValueError naming
        the file and the rule when it is malformed."""
        p = Path(path)
        raw = p.read_bytes()
        try:
            data = json.loads(raw) if p.suffix.lower() == ".json" else tomllib.loads(raw.decode())
        except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"{p}: not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {exc}"
            ) from exc
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{p}: {exc}") from exc

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        if not isinstance(data, Mapping):
            raise ValueError("a scenario must be a table/object with a 'rules' list")
        unknown = set(data) - {"defaults", "rules", "transcripts"}
        if unknown:
            raise ValueError(f"unknown top-level key(s): {', '.join(sorted(unknown))}")
        defaults = dict(data.get("defaults", {}))
        _check_keys(defaults, {"chunk_ms", "pace", "delay_ms"}, "defaults")
        rules = data.get("rules", [])
        if not isinstance(rules, Sequence) or isinstance(rules, str):
            raise ValueError("'rules' must be a list")
        raw = data.get("transcripts", {})
        if not isinstance(raw, Mapping):
            raise ValueError("'transcripts' must be a table of audio turn number -> text")
        transcripts: dict[int, str] = {}
        for key, text in raw.items():
            if not str(key).isdigit() or int(key) < 1 or not isinstance(text, str):
                raise ValueError(f"transcripts: {key!r} must be a turn number >= 1 with a string")
            transcripts[int(key)] = text
        return cls((_rule_from_dict(r, i, defaults) for i, r in enumerate(rules)), transcripts)


_STEP_KEYS = {"say", "text", "call", "arguments"}


def _check_keys(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(obj) - allowed
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def _step_from_dict(s: Any, where: str) -> Step:
    if not isinstance(s, Mapping):
        raise ValueError(f'{where}: a step must be a table like {{say = "..."}}')
    _check_keys(s, _STEP_KEYS, where)
    kinds = [k for k in ("say", "text", "call") if k in s]
    if len(kinds) != 1:
        raise ValueError(f"{where}: a step needs exactly one of say, text, call")
    kind = kinds[0]
    if not isinstance(s[kind], str):
        raise ValueError(f"{where}: {kind} must be a string")
    if kind == "call":
        args = s.get("arguments", {})
        if not isinstance(args, Mapping | str):
            raise ValueError(f"{where}: arguments must be a table or a JSON string")
        return Call.of(s["call"], args)
    if "arguments" in s:
        raise ValueError(f"{where}: arguments belongs to a call step")
    return Say(s["say"]) if kind == "say" else Text(s["text"])


def _rule_from_dict(r: Any, i: int, defaults: Mapping[str, Any]) -> Rule:
    where = f"rules[{i}]"
    if not isinstance(r, Mapping):
        raise ValueError(f"{where}: a rule must be a table")
    _check_keys(r, {"match", "steps", "chunk_ms", "pace", "delay_ms", "times"}, where)
    m = r.get("match", {})
    if not isinstance(m, Mapping):
        raise ValueError(f"{where}.match: must be a table")
    _check_keys(m, {"text", "audio_turn", "after_tool", "instructions"}, f"{where}.match")
    steps = r.get("steps")
    if not isinstance(steps, Sequence) or isinstance(steps, str) or not steps:
        raise ValueError(f"{where}: 'steps' must be a non-empty list")
    options = {k: r.get(k, defaults.get(k)) for k in ("chunk_ms", "pace", "delay_ms")}
    options = {k: v for k, v in options.items() if v is not None}
    try:
        reply = Reply(
            *(_step_from_dict(s, f"{where}.steps[{j}]") for j, s in enumerate(steps)), **options
        )
        match = Match(**dict(m))
    except TypeError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    times = r.get("times")
    if times is not None and (not isinstance(times, int) or times < 1):
        raise ValueError(f"{where}.times: must be a positive integer")
    return Rule(match, reply, times)
