"""Mock OpenAI Realtime server (GA protocol), shipped for users' own CI.

    from foreman.testing.mock_realtime import MockRealtimeServer, Scenario, Rule, Match, Reply

    scenario = Scenario([Rule(Match.user_text("hello"), Reply.say("Hi!"))])
    async with MockRealtimeServer(scenario) as mock:
        ... connect a client to mock.url ...
        await mock.wait_for_client_event("response.create")

Run it standalone with `foreman mock-realtime --port 9100 [--scenario FILE] [--api-key KEY]`
(or `python -m foreman.testing.mock_realtime.cli`); pytest users add
`pytest_plugins = ["foreman.testing.pytest_plugin"]` and take the `mock_realtime` fixture.

What it speaks (https://platform.openai.com/docs/guides/realtime-conversations):
`session.created` first; `session.update` validated like the service
(`missing_required_parameter`, `unknown_parameter`, `invalid_value`, `invalid_type`, nothing
applied on error, `error.event_id` echoes the client's); server VAD by energy over appended
audio (`audio/pcm` 24 kHz, `audio/pcmu`, `audio/pcma`) with true `audio_start_ms` (prefix
padding included) and `audio_end_ms`; scripted replies as real synthesized speech (espeak-ng;
a tone if it is missing) in the session's output format, text, and function calls, in the
event order of the live service; `response.cancel`, barge-in cancel (`turn_detected`),
`conversation.item.truncate` with the service's "already shorter than" error; item
create/retrieve/delete; faults (see `Faults`).

Scenario files (JSON, or TOML for any other suffix)::

    [defaults]                 # optional: options for every rule
    chunk_ms = 100             # audio per output_audio.delta
    pace = "burst"             # "burst" (as fast as possible) or a real-time factor, e.g. 1.0
    delay_ms = 0               # wait before the first delta

    [transcripts]              # optional: input transcription text for audio turn n
    1 = "What is the weather?"

    [[rules]]                  # first matching rule wins
    match = { text = "weather" }           # user text item contains this (case-insensitive)
    steps = [
      { say = "Let me check the weather." },                      # audio + transcript
      { call = "get_weather", arguments = { city = "Paris" } },   # function call
    ]

    [[rules]]
    match = { after_tool = "get_weather" } # the last item is that tool's function_call_output
    steps = [{ say = "It is sunny in Paris." }]

    [[rules]]
    match = { audio_turn = 1 }             # the first committed audio turn
    steps = [{ text = "An output_text reply." }]
    times = 1                              # fire at most once per session
    pace = 1.0

    [[rules]]                              # no match table: any turn
    steps = [{ say = "Default reply." }]

`match` may also hold `instructions = "substring"` (of `response.create` instructions);
`text` also matches an audio turn through its scripted transcript. With no matching rule the
mock answers with a short spoken reply ("You said: <text>" for text turns). More in
docs/mock-realtime.md.
"""

from foreman.testing.mock_realtime.faults import Faults
from foreman.testing.mock_realtime.scenario import (
    Call,
    Match,
    Reply,
    Rule,
    Say,
    Scenario,
    Text,
    Turn,
)
from foreman.testing.mock_realtime.server import MockRealtimeServer
from foreman.testing.mock_realtime.session import MockSession

__all__ = [
    "Call",
    "Faults",
    "Match",
    "MockRealtimeServer",
    "MockSession",
    "Reply",
    "Rule",
    "Say",
    "Scenario",
    "Text",
    "Turn",
]
