"""Slow run: the OpenAI Realtime parser, the session state machine and the client, 10,000
examples each, over frames built from the protocol's own field specs (right, wrong and
missing fields), JSON of every shape and garbage, interleaved with every command.

Only the documented errors escape (RemoteProtocolError for a frame, InvalidState for a
command the phase forbids, ValueError for audio that is not base64); phases move only along
the table's edges and ERROR and CLOSED are final; counters never go down; a truncate never
claims more audio than arrived; and everything the client queues is a well-formed client
event.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fuzz_strategies import B64_AUDIO, FUZZ, ITEM_IDS, REALTIME_FRAMES, WEIRD_TEXT
from hypothesis import given
from hypothesis import strategies as st

from foreman.audio.formats import PCM16_24K
from foreman.exceptions import InvalidState, RemoteProtocolError
from foreman.protocols.realtime import (
    Phase,
    RealtimeSession,
    SessionOptions,
    build_session_update,
)
from foreman.protocols.realtime.client import RealtimeClient
from foreman.protocols.realtime.parser import parse_client_event, parse_server_event
from foreman.protocols.realtime.server_events import ServerEvent

pytestmark = pytest.mark.slow

P = Phase
EDGES = {
    (P.CONNECTING, P.CREATED),
    (P.CREATED, P.CONFIGURING),
    (P.CONFIGURING, P.CONFIGURED),
    *((p, P.ERROR) for p in (P.CONNECTING, P.CREATED, P.CONFIGURING, P.CONFIGURED)),
    *((p, P.CLOSED) for p in (P.CONNECTING, P.CREATED, P.CONFIGURING, P.CONFIGURED)),
}
CREATED = json.dumps({"type": "session.created", "event_id": "e", "session": {"id": "sess_1"}})
UPDATED = json.dumps({"type": "session.updated", "event_id": "e", "session": {"id": "sess_1"}})
UPDATE = build_session_update(
    SessionOptions(
        model="gpt-realtime-2.1",
        instructions="Be brief.",
        voice="marin",
        input_format=PCM16_24K,
        output_format=PCM16_24K,
    )
)
COMMANDS = st.one_of(
    st.tuples(st.just("receive"), REALTIME_FRAMES),
    st.tuples(st.just("receive"), REALTIME_FRAMES),
    st.tuples(st.just("request"), st.none() | WEIRD_TEXT),
    st.tuples(
        st.just("interrupt"),
        st.none() | ITEM_IDS,
        st.integers(0, 2),
        st.none() | st.integers(0, 10**6),
    ),
    st.tuples(st.just("text"), st.sampled_from(["user", "assistant", "system"]), WEIRD_TEXT),
    st.tuples(st.just("audio"), B64_AUDIO | WEIRD_TEXT),
    st.tuples(st.just("commit")),
    st.tuples(st.just("lost"), st.none() | st.sampled_from([1000, 1006, 1011, 4000]), WEIRD_TEXT),
    st.tuples(st.just("close")),
)


@FUZZ
@given(REALTIME_FRAMES)
def test_the_parser_raises_only_remote_protocol_error(frame: str | bytes) -> None:
    try:
        event = parse_server_event(frame)
    except RemoteProtocolError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(event, ServerEvent) and isinstance(event.type, str)


def _configure(rt: RealtimeSession, depth: int) -> None:
    if depth >= 1:
        rt.receive(CREATED)
    if depth >= 2:
        rt.send(UPDATE)
    if depth >= 3:
        rt.receive(UPDATED)


@FUZZ
@given(st.integers(0, 3), st.lists(COMMANDS, max_size=25))
def test_the_session_state_machine_keeps_its_invariants(
    depth: int, commands: list[tuple[Any, ...]]
) -> None:
    rt = RealtimeSession()
    _configure(rt, depth)
    counters = dict(rt.counters)
    for command in commands:
        before = rt.phase
        kind = command[0]
        try:
            if kind == "receive":
                rt.receive(command[1])
            elif kind == "audio":
                rt.send_audio(command[1])
            elif kind == "lost":
                assert isinstance(rt.connection_lost(command[1], command[2]), bool)
            elif kind == "close":
                rt.close()
            elif kind == "interrupt" and command[1] is not None and command[3] is not None:
                truncate = rt.clamp_truncate(command[1], command[2], command[3])
                if truncate is not None:
                    received = rt.audio_received_ms(command[1], command[2])
                    assert 0 <= truncate.audio_end_ms <= min(command[3], received)
        except (RemoteProtocolError, InvalidState, ValueError):
            pass
        after = rt.phase
        assert after == before or (before, after) in EDGES, (before, after, command)
        if before in (P.ERROR, P.CLOSED):
            assert after == before
        for name, value in rt.counters.items():
            assert value >= counters.get(name, 0), name
        counters = dict(rt.counters)


@FUZZ
@given(st.integers(0, 2), st.lists(COMMANDS, max_size=25))
def test_the_client_queues_only_well_formed_client_events(
    depth: int, commands: list[tuple[Any, ...]]
) -> None:
    client = RealtimeClient(UPDATE)
    sent: list[str] = []
    if depth >= 1:
        client.receive(CREATED)
        sent += client.data_to_send()
    if depth >= 2:
        client.receive(UPDATED)
    for command in commands:
        kind = command[0]
        try:
            if kind == "receive":
                client.receive(command[1])
            elif kind == "request":
                client.request_response(command[1])
            elif kind == "interrupt":
                client.interrupt(command[1], command[2], command[3])
            elif kind == "text":
                client.add_text(command[1], command[2])
            elif kind == "audio":
                sent.append(client.send_audio(command[1]))
            elif kind == "commit":
                client.commit_turn()
            elif kind == "lost":
                client.session.connection_lost(command[1], command[2])
            else:
                client.session.close()
        except (RemoteProtocolError, InvalidState, ValueError):
            pass
        sent += client.data_to_send()
    for text in sent:
        event = parse_client_event(text)  # strict: unknown or missing fields raise
        if event.type == "conversation.item.truncate":
            assert event.to_dict()["audio_end_ms"] >= 0
