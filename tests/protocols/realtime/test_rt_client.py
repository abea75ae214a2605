"""RealtimeClient: the handshake, one response at a time, idle, barge-in, refused creates.

Tested without asyncio: server frames go in as JSON text, and what the client would send is
read from `data_to_send()`. The property test plays a server that answers creates in order
and checks the client's promises over random interleavings.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

import pydantic
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from openai.types.realtime import RealtimeClientEvent
from test_rt_conformance import _extras

from foreman.audio.formats import PCM16_24K
from foreman.exceptions import InvalidState
from foreman.protocols.realtime import Phase, SessionOptions, build_session_update
from foreman.protocols.realtime.client import RealtimeClient

CLIENT_EVENT = pydantic.TypeAdapter(
    Annotated[RealtimeClientEvent, pydantic.Field(discriminator="type")]
)
ALREADY_ACTIVE = "conversation_already_has_active_response"
UPDATE = build_session_update(
    SessionOptions(
        model="gpt-realtime-2.1",
        instructions="Be brief.",
        voice="marin",
        input_format=PCM16_24K,
        output_format=PCM16_24K,
    )
)


# --- server frames ---------------------------------------------------------------------------
def frame(type_: str, **fields: Any) -> str:
    return json.dumps({"type": type_, "event_id": f"event_{type_}", **fields})


def created(response_id: str, *, out_of_band: bool = False) -> str:
    conversation = None if out_of_band else "conv_1"
    return frame(
        "response.created",
        response={"id": response_id, "status": "in_progress", "conversation_id": conversation},
    )


def done(response_id: str, status: str = "completed", *, out_of_band: bool = False) -> str:
    conversation = None if out_of_band else "conv_1"
    return frame(
        "response.done",
        response={"id": response_id, "status": status, "conversation_id": conversation},
    )


def refused(event_id: str | None, code: str | None = ALREADY_ACTIVE) -> str:
    return frame(
        "error",
        error={
            "type": "invalid_request_error",
            "code": code,
            "message": "refused",
            "param": None,
            "event_id": event_id,
        },
    )


def audio_delta(response_id: str, item_id: str, ms: int) -> str:
    """`ms` of pcm16 24 kHz audio (48 bytes per ms)."""
    return frame(
        "response.output_audio.delta",
        response_id=response_id,
        item_id=item_id,
        output_index=0,
        content_index=0,
        delta=base64.b64encode(bytes(48 * ms)).decode(),
    )


SESSION_CREATED = frame("session.created", session={"type": "realtime", "id": "sess_1"})
SESSION_UPDATED = frame("session.updated", session={"type": "realtime", "id": "sess_1"})


# --- helpers ---------------------------------------------------------------------------------
def sent(client: RealtimeClient) -> list[dict[str, Any]]:
    """What the client would send now, decoded, each checked against the SDK's union."""
    out = [json.loads(text) for text in client.data_to_send()]
    for event in out:
        model = CLIENT_EVENT.validate_python(event)
        assert _extras(model) == [], event
    return out


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def configured_client() -> RealtimeClient:
    client = RealtimeClient(UPDATE)
    client.receive(SESSION_CREATED)
    client.receive(SESSION_UPDATED)
    client.data_to_send()
    assert client.configured
    return client


def responding_client(response_id: str = "resp_1") -> RealtimeClient:
    client = configured_client()
    client.request_response()
    client.data_to_send()
    client.receive(created(response_id))
    assert client.responding
    return client


# --- handshake -------------------------------------------------------------------------------
def test_session_update_goes_out_when_session_created_arrives() -> None:
    client = RealtimeClient(UPDATE)
    assert client.data_to_send() == []
    client.receive(SESSION_CREATED)
    out = sent(client)
    assert types(out) == ["session.update"]
    assert out[0]["session"]["instructions"] == "Be brief."
    assert not client.configured
    client.receive(SESSION_UPDATED)
    assert client.configured and sent(client) == []


def test_requests_pipelined_behind_the_update_go_out_in_order() -> None:
    client = RealtimeClient(UPDATE)
    client.receive(SESSION_CREATED)
    client.add_text("system", "The caller is the owner.")
    client.request_response("Greet the caller.")
    out = sent(client)
    assert types(out) == ["session.update", "conversation.item.create", "response.create"]
    assert out[2]["response"] == {"instructions": "Greet the caller."}


def test_the_outbox_empties_on_each_read() -> None:
    client = configured_client()
    client.add_text("user", "hi")
    assert len(client.data_to_send()) == 1
    assert client.data_to_send() == []


@pytest.mark.parametrize(
    ("role", "item_role", "content_type"),
    [("user", "user", "input_text"), ("system", "system", "input_text"),
     ("assistant", "assistant", "output_text")],
)  # fmt: skip
def test_add_text_queues_one_item_of_that_role(
    role: str, item_role: str, content_type: str
) -> None:
    client = configured_client()
    client.add_text(role, "words")
    [event] = sent(client)
    assert event["type"] == "conversation.item.create"
    assert event["item"]["role"] == item_role
    assert event["item"]["content"][0] == {"type": content_type, "text": "words"}


def test_audio_bypasses_the_outbox() -> None:
    client = configured_client()
    text = client.send_audio("AAAA")
    assert json.loads(text) == {"type": "input_audio_buffer.append", "audio": "AAAA"}
    assert client.data_to_send() == []


def test_a_create_the_session_refuses_leaves_the_client_idle() -> None:
    """Regression: the in-flight count was raised before the session refused the send, so
    the client stayed busy forever and deferred every later request."""
    client = RealtimeClient()  # no session.update: nothing may be created before it
    with pytest.raises(InvalidState):
        client.request_response()
    assert client.idle
    client.receive(SESSION_CREATED)
    with pytest.raises(InvalidState):  # CREATED: the update must go first
        client.request_response()
    assert client.idle
    client.queue(UPDATE)
    client.data_to_send()
    client.request_response()
    assert types(sent(client)) == ["response.create"]


# --- one response at a time ------------------------------------------------------------------
def test_a_request_while_a_create_is_in_flight_waits_for_the_response_to_end() -> None:
    client = configured_client()
    client.request_response()
    assert types(sent(client)) == ["response.create"]
    assert not client.idle
    client.request_response("second")
    assert sent(client) == []  # a create is in flight: the service would refuse a second
    client.receive(created("resp_1"))
    assert sent(client) == []
    client.receive(done("resp_1"))
    out = sent(client)
    assert types(out) == ["response.create"]
    assert out[0]["response"] == {"instructions": "second"}


@pytest.mark.parametrize(
    ("requests", "expected"),
    [
        ([None], None),
        (["a"], {"instructions": "a"}),
        (["a", "b"], {"instructions": "b"}),
        (["a", None], {"instructions": "a"}),  # a plain request keeps earlier instructions
        ([None, "b", None], {"instructions": "b"}),
        (["", None], None),  # empty instructions are no instructions
    ],
)
def test_requests_while_responding_collapse_and_last_instructions_win(
    requests: list[str | None], expected: dict[str, str] | None
) -> None:
    client = responding_client()
    for instructions in requests:
        client.request_response(instructions)
    assert sent(client) == []
    assert not client.idle
    client.receive(done("resp_1"))
    [event] = sent(client)
    assert event["type"] == "response.create"
    assert event.get("response") == expected
    client.receive(created("resp_2"))
    client.receive(done("resp_2"))
    assert sent(client) == [] and client.idle


def test_an_out_of_band_response_neither_blocks_nor_answers_a_create() -> None:
    client = configured_client()
    client.receive(created("resp_oob", out_of_band=True))
    assert not client.responding and client.idle
    client.request_response()
    assert types(sent(client)) == ["response.create"]
    client.receive(created("resp_oob2", out_of_band=True))
    client.request_response()
    assert sent(client) == []  # ours is still in flight
    client.receive(done("resp_oob", out_of_band=True))
    assert sent(client) == []
    client.receive(created("resp_1"))
    client.receive(done("resp_1"))
    assert types(sent(client)) == ["response.create"]


def test_a_server_created_response_makes_the_client_busy_and_defers_requests() -> None:
    client = configured_client()
    client.receive(created("resp_vad"))  # server VAD created it
    assert client.responding and not client.idle
    client.request_response()
    assert sent(client) == []
    client.receive(done("resp_vad", "cancelled"))
    assert types(sent(client)) == ["response.create"]


# --- refused creates -------------------------------------------------------------------------
def test_already_active_refusal_is_deferred_until_the_running_response_ends() -> None:
    client = configured_client()
    client.request_response("Say goodbye.")
    [create] = sent(client)
    client.receive(created("resp_vad"))  # a server response won the race
    client.receive(refused(create["event_id"]))
    assert sent(client) == [] and not client.idle
    client.receive(done("resp_vad"))
    [again] = sent(client)
    assert again["type"] == "response.create"
    assert again["response"] == {"instructions": "Say goodbye."}  # not lost on the way


def test_a_refused_create_keeps_its_instructions_unless_a_later_request_has_some() -> None:
    """Regression: an already-active refusal re-deferred the request without its
    instructions, so a goodbye asked for with instructions came back as a plain reply."""
    client = configured_client()
    client.request_response("first")
    [first] = sent(client)
    client.request_response()  # deferred, no instructions of its own
    client.receive(refused(first["event_id"]))
    [again] = sent(client)  # nothing runs: re-sent at once
    assert again["response"] == {"instructions": "first"}
    client.request_response("newer")  # deferred behind the re-sent create
    client.receive(refused(again["event_id"]))
    [last] = sent(client)
    assert last["response"] == {"instructions": "newer"}


@pytest.mark.parametrize("code", ["invalid_value", None, "rate_limit_exceeded"])
def test_another_refusal_releases_the_in_flight_create(code: str | None) -> None:
    client = configured_client()
    client.request_response("bad")
    [create] = sent(client)
    assert not client.idle
    client.receive(refused(create["event_id"], code))
    assert client.idle and sent(client) == []  # not retried: the request itself was wrong


def test_another_refusal_lets_a_deferred_request_go() -> None:
    client = configured_client()
    client.request_response("bad")
    [create] = sent(client)
    client.request_response("good")
    client.receive(refused(create["event_id"], "invalid_value"))
    [event] = sent(client)
    assert event["response"] == {"instructions": "good"}


@pytest.mark.parametrize("event_id", [None, "evt_unknown", "cfg-1"])
def test_an_error_that_does_not_answer_a_create_changes_nothing(event_id: str | None) -> None:
    client = configured_client()
    client.request_response()
    sent(client)
    client.receive(refused(event_id, "invalid_value"))
    assert not client.idle and sent(client) == []
    client.request_response()
    assert sent(client) == []  # still in flight


# --- idle ------------------------------------------------------------------------------------
def test_idle_follows_a_whole_response() -> None:
    client = configured_client()
    assert client.idle
    client.commit_turn()
    assert types(sent(client)) == ["input_audio_buffer.commit", "response.create"]
    assert not client.idle
    client.receive(created("resp_1"))
    assert not client.idle
    client.receive(done("resp_1"))
    assert client.idle


# --- barge-in --------------------------------------------------------------------------------
def test_interrupt_while_responding_cancels_and_truncates_to_what_was_heard() -> None:
    client = responding_client()
    client.receive(audio_delta("resp_1", "item_a", 1000))
    client.interrupt("item_a", 0, 400)
    out = sent(client)
    assert types(out) == ["response.cancel", "conversation.item.truncate"]
    assert out[1]["item_id"] == "item_a" and out[1]["audio_end_ms"] == 400


@pytest.mark.parametrize(
    ("received_ms", "heard_ms", "expected"),
    [
        (1000, 400, 400),
        (1000, -20, 0),
        (1000, 999, 999),
        (1000, 1000, None),  # all of it was heard: nothing to cut
        (1000, 5000, None),  # never more than was received
        (0, 100, None),
    ],
)
def test_truncate_is_clamped_to_the_audio_received(
    received_ms: int, heard_ms: int, expected: int | None
) -> None:
    client = responding_client()
    client.receive(done("resp_1"))
    if received_ms:
        client.receive(audio_delta("resp_1", "item_a", received_ms))
    client.interrupt("item_a", 0, heard_ms)
    out = sent(client)
    assert "response.cancel" not in types(out)  # nothing streams any more
    truncates = [e["audio_end_ms"] for e in out if e["type"] == "conversation.item.truncate"]
    assert truncates == ([] if expected is None else [expected])


@pytest.mark.parametrize(("item_id", "heard_ms"), [(None, 300), ("item_a", None)])
def test_interrupt_without_a_position_only_cancels(
    item_id: str | None, heard_ms: int | None
) -> None:
    client = responding_client()
    client.receive(audio_delta("resp_1", "item_a", 1000))
    client.interrupt(item_id, 0, heard_ms)
    assert types(sent(client)) == ["response.cancel"]


def test_interrupt_does_not_cancel_an_out_of_band_response() -> None:
    client = configured_client()
    client.receive(created("resp_oob", out_of_band=True))
    client.interrupt(None, 0, None)
    assert sent(client) == []


# --- property: random interleavings against a server that answers in order ------------------
class Server:
    """The service as the client sees it: creates are answered in the order they were sent,
    by a response.created (or an error echoing the create's event id)."""

    def __init__(self, client: RealtimeClient) -> None:
        self.client = client
        self.outstanding: list[tuple[str, str | None]] = []  # (event id, instructions)
        self.active: str | None = None  # default-conversation response running
        self.oob_running: list[str] = []
        self.wanted = False  # a request was made and no create has carried it yet
        self.instructions: str | None = None  # what the next create must carry
        self.seq = 0
        self.items: dict[str, int] = {}  # ms of audio received per item

    def new_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}_{self.seq}"

    # the client's outbox, checked against the model -----------------------------------------
    def drain(self) -> None:
        for event in sent(self.client):
            if event["type"] != "response.create":
                continue
            # (a) a create goes out only when nothing runs and no other create is in flight
            assert self.active is None, "response.create sent while a response runs"
            assert not self.outstanding, "second response.create while one is in flight"
            # (b) it carries the request, with the last instructions given
            assert self.wanted, "response.create nobody asked for"
            got = (event.get("response") or {}).get("instructions")
            assert got == self.instructions
            self.wanted, self.instructions = False, None
            self.outstanding.append((event["event_id"], got))
        # (c) idle is exactly: nothing runs, nothing in flight, nothing deferred
        expected_idle = self.active is None and not self.outstanding and not self.wanted
        assert self.client.idle is expected_idle
        # (b) a request is never stranded while nothing could answer it
        assert not (self.wanted and self.active is None and not self.outstanding)

    # client commands --------------------------------------------------------------------------
    def requested(self, instructions: str | None) -> None:
        if instructions or not self.wanted:
            self.instructions = instructions or None
        self.wanted = True

    def request(self, instructions: str | None) -> None:
        self.requested(instructions)
        self.client.request_response(instructions)

    def commit_turn(self) -> None:
        self.requested(None)
        self.client.commit_turn()

    def add_text(self) -> None:
        self.client.add_text("user", "more context")

    def interrupt(self, heard_ms: int) -> None:
        self.client.interrupt(next(iter(self.items), None), 0, heard_ms)

    # server events ------------------------------------------------------------------------------
    def response_created(self) -> None:
        """A default-conversation response starts: the answer to the oldest create, or a
        server-created one (turn detection) when none is in flight."""
        if self.active is not None:
            return  # the service runs one default response at a time
        if self.outstanding:
            self.outstanding.pop(0)
        self.active = self.new_id("resp")
        self.client.receive(created(self.active))

    def response_done(self, status: str) -> None:
        if self.active is None:
            return
        response_id, self.active = self.active, None
        self.client.receive(done(response_id, status))

    def refuse_create(self, code: str) -> None:
        if not self.outstanding:
            return
        event_id, instructions = self.outstanding.pop(0)
        if code == ALREADY_ACTIVE:
            # re-deferred: a later request's instructions win, else the refused ones
            if not self.wanted or self.instructions is None:
                self.instructions = instructions
            self.wanted = True
        self.client.receive(refused(event_id, code))

    def out_of_band(self, start: bool) -> None:
        if start:
            self.oob_running.append(self.new_id("resp_oob"))
            self.client.receive(created(self.oob_running[-1], out_of_band=True))
        elif self.oob_running:
            self.client.receive(done(self.oob_running.pop(0), out_of_band=True))

    def audio(self, ms: int) -> None:
        if self.active is None:
            return
        item = f"item_{self.active}"
        self.items[item] = self.items.get(item, 0) + ms
        self.client.receive(audio_delta(self.active, item, ms))

    def unrelated_error(self) -> None:
        self.client.receive(refused(None, "input_audio_buffer_commit_empty"))

    def settle(self) -> None:
        """Let the service finish everything; whatever was asked for must have gone out."""
        for _ in range(20):
            if self.active is not None:
                self.response_done("completed")
            elif self.outstanding:
                self.response_created()
            else:
                break
            self.drain()
        assert not self.wanted and self.client.idle


INSTRUCTIONS = st.sampled_from([None, None, "", "Say goodbye.", "Be brief."])
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("request"), INSTRUCTIONS),
        st.tuples(st.just("commit_turn")),
        st.tuples(st.just("add_text")),
        st.tuples(st.just("interrupt"), st.integers(-10, 2000)),
        st.tuples(st.just("response_created")),
        st.tuples(st.just("response_done"), st.sampled_from(["completed", "cancelled", "failed"])),
        st.tuples(
            st.just("refuse_create"),
            st.sampled_from([ALREADY_ACTIVE, ALREADY_ACTIVE, "invalid_value"]),
        ),
        st.tuples(st.just("out_of_band"), st.booleans()),
        st.tuples(st.just("audio"), st.integers(1, 300)),
        st.tuples(st.just("unrelated_error")),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(steps=STEPS)
@example(  # refused while nothing ran; the re-sent create must keep the instructions
    steps=[("request", "Say goodbye."), ("request", None), ("refuse_create", ALREADY_ACTIVE)]
)
@example(  # a server-created response takes the in-flight create's place
    steps=[
        ("request", None),
        ("response_created",),
        ("request", "x"),
        ("response_done", "cancelled"),
    ]
)
@example(  # an out-of-band response ends while ours is in flight
    steps=[("request", None), ("out_of_band", True), ("request", "x"), ("out_of_band", False)]
)
def test_one_response_at_a_time_and_no_request_lost(steps: list[tuple[Any, ...]]) -> None:
    client = configured_client()
    server = Server(client)
    for name, *args in steps:
        getattr(server, name)(*args)
        server.drain()
        assert client.session.phase is Phase.CONFIGURED
    server.settle()


def test_retry_response_asks_again_when_a_create_was_never_answered() -> None:
    c = configured_client()
    c.request_response()
    assert types(sent(c)) == ["response.create"]
    assert c.awaiting_response and not c.idle
    c.request_response()  # deferred: one is in flight
    assert sent(c) == []
    c.retry_response("Answer the user.")  # the watchdog: the service never answered
    again = sent(c)
    assert types(again) == ["response.create"]
    assert again[0]["response"] == {"instructions": "Answer the user."}
    c.receive(created("resp_9"))
    assert not c.awaiting_response and c.responding
    c.receive(done("resp_9"))
    assert sent(c) == [] and c.idle  # the deferred request went with the retry
