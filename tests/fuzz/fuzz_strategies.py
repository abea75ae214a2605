"""Shared pieces of the slow fuzz run (`./scripts/test-slow`): the example count and
structure-aware frame strategies. Each frame strategy mixes frames built from the protocol's
own field specs (right types, wrong types, missing fields, absurd values) with JSON of every
shape and plain garbage, so examples reach deep into the parsers instead of stopping at
"not JSON"."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from foreman.protocols.realtime.server_events import SERVER_EVENT_TYPES

EXAMPLES = 10_000
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

WEIRD_TEXT = st.text(
    st.characters(codec="utf-8") | st.sampled_from(["\x00", "\u2028", "\ufeff", '"', "\\", "="]),
    max_size=24,
)
NUMBERS = st.one_of(
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 1, 2**31, 10**20]),
)
SCALARS = st.none() | st.booleans() | NUMBERS | WEIRD_TEXT
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(WEIRD_TEXT, inner, max_size=3),
    max_leaves=12,
)
GARBAGE = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    st.sampled_from(["", "{", "[]", "null", '{"type": 1}', "{}" * 50, "[" * 2000]),
    JSONISH.map(json.dumps),
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


B64_AUDIO = st.binary(max_size=480).map(_b64)
ITEM_IDS = st.sampled_from(["item_a", "item_b", "item_c"])
RESPONSE_IDS = st.sampled_from(["resp_1", "resp_2"])


# --- OpenAI Realtime server events -----------------------------------------------------------
def _good(name: str, kind: str) -> st.SearchStrategy[Any]:
    """A plausible value for a field of this name and JSON kind."""
    if name in ("item_id", "previous_item_id"):
        return ITEM_IDS
    if name == "response_id":
        return RESPONSE_IDS
    if name in {"delta", "audio"}:
        return B64_AUDIO | WEIRD_TEXT
    if name in ("content_index", "output_index"):
        return st.integers(-1, 3)
    if name.endswith("_ms"):
        return st.integers(-10, 100_000)
    if name == "status":
        return st.sampled_from(["completed", "cancelled", "in_progress", "failed", "incomplete"])
    if name in ("response", "item", "session", "error"):
        return st.fixed_dictionaries(
            {},
            optional={
                "id": ITEM_IDS | RESPONSE_IDS | WEIRD_TEXT,
                "status": st.sampled_from(["completed", "in_progress", "cancelled"]),
                "conversation_id": st.none() | st.just("conv_1"),
                "type": st.sampled_from(
                    ["message", "function_call", "realtime", "invalid_request_error"]
                ),
                "code": st.sampled_from(
                    ["session_expired", "conversation_already_has_active_response", None]
                )
                | WEIRD_TEXT,
                "message": WEIRD_TEXT,
                "call_id": st.sampled_from(["call_1", "call_2"]),
                "name": st.sampled_from(["end_call", "send_sms"]),
                "arguments": st.sampled_from(["{}", '{"to": "+1555"}', "{", ""]),
                "output": st.lists(JSONISH, max_size=2),
                "audio": JSONISH,
            },
        )
    return {
        "a string": WEIRD_TEXT,
        "an integer": st.integers(-5, 10**6),
        "a number": NUMBERS,
        "a boolean": st.booleans(),
        "an object": st.dictionaries(WEIRD_TEXT, JSONISH, max_size=3),
        "an array": st.lists(JSONISH, max_size=3),
    }.get(kind, JSONISH)


_MISSING = object()


@st.composite
def realtime_event(draw: st.DrawFn) -> dict[str, Any]:
    """A known server event type with its fields right, wrong or missing."""
    kind = draw(st.sampled_from(sorted(SERVER_EVENT_TYPES)))
    obj: dict[str, Any] = {"type": kind, "event_id": draw(st.just("event_1") | WEIRD_TEXT)}
    for spec in SERVER_EVENT_TYPES[kind].spec:
        value = draw(
            st.one_of(_good(spec.name, spec.kind), _good(spec.name, spec.kind), JSONISH)
            | st.just(_MISSING)
        )
        if value is _MISSING:
            continue
        target = obj
        for part in spec.path[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                break
            target = nested
        else:
            target.setdefault(spec.path[-1], value)
    return obj


REALTIME_FRAMES: st.SearchStrategy[str | bytes] = st.one_of(
    realtime_event().map(json.dumps),
    realtime_event().map(json.dumps),
    realtime_event().map(lambda o: json.dumps(o).encode()),
    st.dictionaries(WEIRD_TEXT, JSONISH, max_size=4)
    .map(lambda d: {**d, "type": "brand.new.event"})
    .map(json.dumps),
    GARBAGE,
)


# --- Twilio Media Streams messages (what Twilio sends the server) ---------------------------
SIDS = st.sampled_from(["MZ" + "1" * 32, "MZ" + "2" * 32]) | WEIRD_TEXT
NUMERIC = st.one_of(st.integers(-5, 10**9).map(str), st.integers(-5, 10**9), JSONISH)


def _body(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={k: v | JSONISH for k, v in fields.items()})


TWILIO_START = st.fixed_dictionaries(
    {"event": st.just("start")},
    optional={
        "sequenceNumber": NUMERIC,
        "streamSid": SIDS,
        "start": _body(
            {
                "streamSid": SIDS,
                "callSid": st.just("CA" + "1" * 32) | WEIRD_TEXT,
                "accountSid": st.just("AC" + "1" * 32) | WEIRD_TEXT,
                "tracks": st.lists(
                    st.sampled_from(["inbound", "outbound"]) | WEIRD_TEXT, max_size=2
                ),
                "customParameters": st.dictionaries(WEIRD_TEXT, WEIRD_TEXT, max_size=4),
                "mediaFormat": _body(
                    {
                        "encoding": st.just("audio/x-mulaw") | WEIRD_TEXT,
                        "sampleRate": st.just(8000) | NUMERIC,
                        "channels": st.just(1) | NUMERIC,
                    }
                ),
            }
        ),
    },
)
TWILIO_MEDIA = st.fixed_dictionaries(
    {"event": st.just("media")},
    optional={
        "sequenceNumber": NUMERIC,
        "streamSid": SIDS,
        "media": _body(
            {
                "payload": B64_AUDIO | WEIRD_TEXT | B64_AUDIO.map(lambda s: s[:-1]),
                "chunk": NUMERIC,
                "timestamp": NUMERIC,
                "track": st.just("inbound") | WEIRD_TEXT,
            }
        ),
    },
)
TWILIO_OTHER = st.one_of(
    st.fixed_dictionaries(
        {"event": st.just("mark")},
        optional={"streamSid": SIDS, "mark": _body({"name": WEIRD_TEXT})},
    ),
    st.fixed_dictionaries(
        {"event": st.just("dtmf")},
        optional={
            "streamSid": SIDS,
            "dtmf": _body({"digit": st.sampled_from(list("0123456789*#AD")) | WEIRD_TEXT}),
        },
    ),
    st.fixed_dictionaries(
        {"event": st.just("stop")},
        optional={"streamSid": SIDS, "stop": _body({"callSid": WEIRD_TEXT})},
    ),
    st.fixed_dictionaries(
        {"event": st.sampled_from(["connected", "clear", "x"]) | WEIRD_TEXT},
        optional={"protocol": JSONISH, "version": JSONISH},
    ),
)
TWILIO_FRAMES: st.SearchStrategy[str | bytes] = st.one_of(
    TWILIO_START.map(json.dumps),
    TWILIO_MEDIA.map(json.dumps),
    TWILIO_MEDIA.map(json.dumps),
    TWILIO_OTHER.map(json.dumps),
    GARBAGE,
)
