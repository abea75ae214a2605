"""Both ends of a Media Stream, put into any phase by walking the transition table.

`at(role, phase)` finds a path of legal events from the role's first phase (breadth first over
`TRANSITIONS`) and performs each one with a real frame, so the tests reach every phase the way
a call does. `perform(end, event)` does one table event; received frames are produced by the
other role's class (a streaming twin with the same sids), never written by hand.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from foreman.protocols.twilio import TwilioCallerStream, TwilioStream
from foreman.protocols.twilio.states import PHASES, TRANSITIONS, Event, Phase, Role

SID = "MZf7b44cfafd5c52223d5498196c8a2e7b"
CALL = "CA53b9e9679a8ea25880376080b76f98ad"
ACCOUNT = "AC4c122831efef10ac68b5223dccd6f614"
PARAMS = {"session": "s_8f2c1d", "caller": "+14155550100"}
SILENCE = b"\xff" * 160
SILENCE_B64 = "////" * 53 + "/w=="

End = TwilioStream | TwilioCallerStream


def new_end(role: Role) -> End:
    return TwilioStream() if role == "server" else TwilioCallerStream()


def start_caller(caller: TwilioCallerStream) -> str:
    return caller.start(
        stream_sid=SID, call_sid=CALL, account_sid=ACCOUNT, custom_parameters=PARAMS
    )


def streaming_pair() -> tuple[TwilioCallerStream, TwilioStream]:
    """A caller and a server that have shaken hands (both streaming)."""
    caller, server = TwilioCallerStream(), TwilioStream()
    server.receive(caller.connected())
    server.receive(start_caller(caller))
    assert caller.phase == server.phase == "streaming"
    return caller, server


def frame_from_caller(kind: str) -> str:
    """A valid frame of `kind` as Twilio sends it."""
    caller = TwilioCallerStream()
    if kind == "connected":
        return caller.connected()
    caller.connected()
    if kind == "start":
        return start_caller(caller)
    start_caller(caller)
    if kind == "media":
        return caller.media(SILENCE, 0)
    if kind == "mark":
        caller.receive(streaming_pair()[1].mark("m1"))
        return caller.mark("m1")
    if kind == "dtmf":
        return caller.dtmf("5")
    assert kind == "stop", kind
    return caller.stop()


def frame_from_server(kind: str) -> str:
    """A valid frame of `kind` as Foreman sends it."""
    server = streaming_pair()[1]
    if kind == "media":
        return server.media_bytes(SILENCE)
    if kind == "mark":
        return server.mark("m1")
    assert kind == "clear", kind
    return server.clear()


def perform(end: End, event: Event) -> Any:
    """Do one table event on `end`; returns what the end returned (events or a frame)."""
    if event == "connection lost":
        end.connection_lost()
        return None
    direction, kind = event.split(" ")
    if direction == "receive":
        frame = frame_from_caller(kind) if end.role == "server" else frame_from_server(kind)
        return end.receive(frame)
    if isinstance(end, TwilioStream):
        server = end
        sends: dict[str, Any] = {
            "media": lambda: server.media(SILENCE_B64),
            "mark": lambda: server.mark("m1"),
            "clear": server.clear,
        }
        return sends[kind]()
    caller = end
    if kind == "mark" and caller.phase == "streaming":
        caller.receive(frame_from_server("mark"))  # an echo needs a mark to echo
    caller_sends: dict[str, Any] = {
        "connected": caller.connected,
        "start": lambda: start_caller(caller),
        "media": lambda: caller.media(SILENCE, 0),
        "mark": lambda: caller.mark("m1"),
        "dtmf": lambda: caller.dtmf("5"),
        "stop": caller.stop,
    }
    return caller_sends[kind]()


def path_to(role: Role, phase: Phase) -> list[Event]:
    """The shortest list of legal events from the role's first phase to `phase`."""
    first = PHASES[role][0]
    paths: dict[Phase, list[Event]] = {first: []}
    todo = deque([first])
    while todo:
        here = todo.popleft()
        for (r, p, event), nxt in TRANSITIONS.items():
            if r == role and p == here and nxt not in paths:
                paths[nxt] = [*paths[here], event]
                todo.append(nxt)
    return paths[phase]


def at(role: Role, phase: Phase) -> End:
    end = new_end(role)
    for event in path_to(role, phase):
        perform(end, event)
    assert end.phase == phase
    return end


ALL_PHASES = [(role, phase) for role, phases in PHASES.items() for phase in phases]
