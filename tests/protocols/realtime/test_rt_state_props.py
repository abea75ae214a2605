"""Property test: any sequence of frames, sends and closes keeps the session's invariants.

Only the documented exceptions escape (InvalidState, RemoteProtocolError, ValueError); phases
move only along the table's edges; ERROR and CLOSED are final; counters only grow; the
truncate clamp never claims more audio than arrived.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from foreman.exceptions import InvalidState, RemoteProtocolError
from foreman.protocols.realtime import (
    ConversationItemCreate,
    ConversationItemTruncate,
    InputAudioBufferCommit,
    Phase,
    RealtimeSession,
    ResponseCancel,
    ResponseCreate,
    SessionUpdate,
    user_text_item,
)
from foreman.testing.speech import synthesize

P = Phase
EDGES = {
    (P.CONNECTING, P.CREATED),
    (P.CREATED, P.CONFIGURING),
    (P.CONFIGURING, P.CONFIGURED),
    *((p, P.ERROR) for p in (P.CONNECTING, P.CREATED, P.CONFIGURING, P.CONFIGURED)),
    *((p, P.CLOSED) for p in (P.CONNECTING, P.CREATED, P.CONFIGURING, P.CONFIGURED)),
}
SPEECH = synthesize("property based state machine", 24000)
ITEMS = ["item_a", "item_b"]


def _frame(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "event_id": "event_p", **fields})


FRAMES = st.one_of(
    st.just(_frame("session.created", session={"id": "sess_p", "type": "realtime"})),
    st.just(_frame("session.updated", session={"id": "sess_p", "type": "realtime"})),
    st.sampled_from(["r1", "r2"]).map(
        lambda r: _frame("response.created", response={"id": r, "conversation_id": "c"})
    ),
    st.sampled_from(["r1", "r2"]).map(
        lambda r: _frame("response.done", response={"id": r, "status": "completed"})
    ),
    st.tuples(st.sampled_from(ITEMS), st.integers(0, 4800)).map(
        lambda t: _frame(
            "response.output_audio.delta",
            response_id="r1",
            item_id=t[0],
            output_index=0,
            content_index=0,
            delta=base64.b64encode(SPEECH[: t[1]]).decode(),
        )
    ),
    st.tuples(st.sampled_from(ITEMS), st.integers(0, 300)).map(
        lambda t: _frame(
            "conversation.item.truncated", item_id=t[0], content_index=0, audio_end_ms=t[1]
        )
    ),
    st.sampled_from(
        [
            "response_cancel_not_active",
            "input_audio_buffer_commit_empty",
            None,
            "invalid_value",
            "conversation_already_has_active_response",
            "session_expired",
        ]
    ).map(
        lambda c: _frame(
            "error", error={"type": "invalid_request_error", "code": c, "message": "m"}
        )
    ),
    st.just(_frame("brand.new.event")),
    st.sampled_from(["{", "[]", '{"type": 1}', _frame("response.output_audio.delta")]),
)
SENDS = st.sampled_from(
    [
        SessionUpdate({"type": "realtime"}),
        SessionUpdate({"modalities": ["text"]}),
        ResponseCreate(),
        ResponseCancel(),
        InputAudioBufferCommit(),
        ConversationItemCreate(user_text_item("hi")),
        ConversationItemTruncate("item_a", 0, 120),
    ]
)


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.rt = RealtimeSession()
        self.counters = dict(self.rt.counters)
        self.phase = self.rt.phase

    @initialize(
        start=st.sampled_from([P.CONNECTING, P.CREATED, P.CONFIGURING, *[P.CONFIGURED] * 3])
    )
    def start_in(self, start: Phase) -> None:
        """Most runs start configured, where the interesting traffic is."""
        order = [P.CONNECTING, P.CREATED, P.CONFIGURING, P.CONFIGURED]
        steps = [
            lambda: self.rt.receive(_frame("session.created", session={"id": "s"})),
            lambda: self.rt.send(SessionUpdate({"type": "realtime"})),
            lambda: self.rt.receive(_frame("session.updated", session={"id": "s"})),
        ]
        for step in steps[: order.index(start)]:
            step()
        assert self.rt.phase is start
        self.phase = start
        self.counters = dict(self.rt.counters)

    def _step(self, before: Phase) -> None:
        after = self.rt.phase
        assert after is before or (before, after) in EDGES, (before, after)

    @rule(data=FRAMES)
    def receive(self, data: str) -> None:
        before = self.rt.phase
        try:
            out = self.rt.receive(data)
        except InvalidState:
            assert before in (P.CLOSED, P.ERROR)
        except RemoteProtocolError:
            pass
        else:
            assert out and getattr(out[0], "type", None) == json.loads(data)["type"]
        self._step(before)

    @rule(event=SENDS)
    def send(self, event: Any) -> None:
        before = self.rt.phase
        try:
            text = self.rt.send(event)
        except InvalidState:
            assert self.rt.phase is before
        except ValueError:
            assert "modalities" in str(event)  # the GA guard
        else:
            assert json.loads(text)["type"] == event.type
        self._step(before)

    @rule(n=st.integers(0, 960))
    def send_audio(self, n: int) -> None:
        before = self.rt.phase
        try:
            self.rt.send_audio(base64.b64encode(SPEECH[:n]).decode())
        except InvalidState:
            assert before not in (P.CONFIGURING, P.CONFIGURED)
        self._step(before)

    @precondition(lambda self: self.rt.phase is not P.CLOSED)
    @rule(dice=st.integers(0, 9))
    def close(self, dice: int) -> None:
        if dice:  # rare, so runs get deep before the end
            return
        before = self.rt.phase
        self.rt.close()
        assert self.rt.phase is (P.ERROR if before is P.ERROR else P.CLOSED)

    @rule(code=st.sampled_from([None, 1000, 1006, 4000]), dice=st.integers(0, 9))
    def connection_lost(self, code: int | None, dice: int) -> None:
        if dice:
            return
        before = self.rt.phase
        self.rt.connection_lost(code)
        self._step(before)

    @rule(item=st.sampled_from(ITEMS), heard=st.integers(-50, 400))
    def clamp(self, item: str, heard: int) -> None:
        t = self.rt.clamp_truncate(item, 0, heard)
        if t is not None:
            assert 0 <= t.audio_end_ms < self.rt.audio_received_ms(item)
            assert t.audio_end_ms <= max(heard, 0)

    @invariant()
    def final_phases_are_final(self) -> None:
        event(f"phase {self.rt.phase.name}")
        if self.phase in (P.ERROR,):
            assert self.rt.phase is P.ERROR
        if self.phase is P.CLOSED:
            assert self.rt.phase is P.CLOSED
        if self.rt.phase is P.ERROR:
            assert self.rt.last_error
        self.phase = self.rt.phase

    @invariant()
    def counters_only_grow(self) -> None:
        for key, value in self.rt.counters.items():
            assert value >= self.counters.get(key, 0)
        self.counters = dict(self.rt.counters)


SessionMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestSessionMachine = SessionMachine.TestCase
