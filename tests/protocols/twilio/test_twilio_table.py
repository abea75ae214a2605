"""The Media Streams transition table, exhaustively: every legal transition of both roles
is taken with a real frame, every illegal one is tried, and the table itself is coherent."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio_ends import ALL_PHASES, at, path_to, perform

from foreman.exceptions import InvalidState, SessionClosed
from foreman.protocols.twilio import BadMessage, Rejected, TwilioStream
from foreman.protocols.twilio.states import (
    ENDED,
    PHASES,
    RECEIVES,
    SENDS,
    TRANSITIONS,
    Event,
    Phase,
    Role,
)

LEGAL = sorted(TRANSITIONS.items())


def _events(role: Role) -> list[Event]:
    return [
        *(f"receive {kind}" for kind in sorted(RECEIVES[role])),
        *(f"send {kind}" for kind in sorted(SENDS[role])),
        "connection lost",
    ]  # type: ignore[list-item]


ILLEGAL = [
    (role, phase, event)
    for role, phase in ALL_PHASES
    for event in _events(role)
    if (role, phase, event) not in TRANSITIONS
]


def test_each_role_receives_exactly_what_the_other_sends() -> None:
    twilio_says = {"connected", "start", "media", "mark", "dtmf", "stop"}
    assert RECEIVES["server"] == SENDS["caller"] == twilio_says
    assert RECEIVES["caller"] == SENDS["server"] == {"media", "mark", "clear"}


def test_every_phase_is_reachable_and_the_end_is_final() -> None:
    for role, phase in ALL_PHASES:
        assert at(role, phase).phase == phase  # by the path `path_to` finds in the table
        assert len(path_to(role, phase)) <= 3
    for (role, phase, event), nxt in TRANSITIONS.items():
        assert phase in PHASES[role] and nxt in PHASES[role]
        if phase == ENDED:
            assert (event, nxt) == ("connection lost", ENDED), (role, event)
    # A lost connection ends the stream from anywhere.
    for role, phase in ALL_PHASES:
        assert TRANSITIONS[(role, phase, "connection lost")] == ENDED


@pytest.mark.parametrize(("key", "nxt"), LEGAL, ids=[" / ".join(k) for k, _ in LEGAL])
def test_every_legal_transition(key: tuple[Role, Phase, Event], nxt: Phase) -> None:
    role, phase, event = key
    end = at(role, phase)
    result = perform(end, event)
    assert end.phase == nxt
    if event.startswith("receive "):
        assert result, "a legal frame is never silently dropped"
        assert not [e for e in result if isinstance(e, BadMessage | Rejected)], result
    elif event.startswith("send "):
        assert json.loads(result)["event"] == event.removeprefix("send ")


@pytest.mark.parametrize("key", ILLEGAL, ids=[" / ".join(k) for k in ILLEGAL])
def test_every_illegal_transition(key: tuple[Role, Phase, Event]) -> None:
    role, phase, event = key
    end = at(role, phase)
    before = dict(end.counters)
    if event.startswith("send "):
        kind = event.removeprefix("send ")
        if phase == ENDED:
            # The far end hung up while we were sending: an ordinary end of the call.
            with pytest.raises(SessionClosed, match=f"cannot send {kind}, the stream has ended"):
                perform(end, event)
        else:
            # Our bug: the message names the role, the phase and the event.
            label = "TwilioStream(server)" if role == "server" else "TwilioCallerStream(caller)"
            expected = f"{label}: cannot send {kind} in phase '{phase}'"
            with pytest.raises(InvalidState, match=re.escape(expected)):
                perform(end, event)
    else:
        # Illegal input never raises: it is counted, reported or dropped.
        events = perform(end, event)
        if isinstance(end, TwilioStream):
            if phase == "waiting":
                assert events == [] and end.counters["dropped_before_start"] == 1
            elif phase == ENDED:
                assert events == [] and end.counters["dropped_after_stop"] == 1
            else:
                (bad,) = events
                assert isinstance(bad, BadMessage) and not bad.fatal
                assert end.counters["bad"] == before["bad"] + 1
        else:
            (rejected,) = events
            assert isinstance(rejected, Rejected) and rejected.code == 31951
            when = "after stop" if phase == ENDED else "before start"
            assert rejected.problems == (f"{event.removeprefix('receive ')} sent {when}",)
            assert end.counters["rejected"] == before["rejected"] + 1
    assert end.phase == phase


def test_every_event_of_each_role_is_in_the_table() -> None:
    tried = {(r, p, e) for r, p, e in ILLEGAL} | set(TRANSITIONS)
    assert tried == {(role, phase, event) for role, phase in ALL_PHASES for event in _events(role)}


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
WIRE_NAMES = [*sorted(RECEIVES["server"] | RECEIVES["caller"]), "x"]
FIELDS = sorted({"streamSid", "sequenceNumber", "payload", "name", *WIRE_NAMES})


def _moved_along_the_table(role: Role, before: Phase, after: Phase, frame: object) -> bool:
    if after == before:
        return True
    try:
        event = json.loads(frame)["event"]  # type: ignore[arg-type]
    except Exception:
        return False
    return TRANSITIONS.get((role, before, f"receive {event}")) == after  # type: ignore[arg-type]


@given(
    st.sampled_from(ALL_PHASES),
    st.one_of(st.text(max_size=300), st.binary(max_size=300)),
)
def test_receive_never_raises_on_arbitrary_frames(
    role_phase: tuple[Role, Phase], frame: str | bytes
) -> None:
    role, phase = role_phase
    end = at(role, phase)
    assert isinstance(end.receive(frame), list)
    assert _moved_along_the_table(role, phase, end.phase, frame)


@given(
    st.sampled_from(ALL_PHASES),
    st.sampled_from(WIRE_NAMES),
    st.dictionaries(st.sampled_from(FIELDS), JSONISH, max_size=4),
)
def test_receive_never_raises_on_structured_junk(
    role_phase: tuple[Role, Phase], event: str, body: dict[str, object]
) -> None:
    role, phase = role_phase
    end = at(role, phase)
    frame = json.dumps({"event": event, **body})
    assert isinstance(end.receive(frame), list)
    assert _moved_along_the_table(role, phase, end.phase, frame)
