"""Load and replay the recorded GA traces in tests/fixtures/realtime (JSONL)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foreman.protocols.realtime import RealtimeSession, parse_client_event

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "realtime"
TRACES = sorted(p.name for p in FIXTURES.glob("*.jsonl"))


def load_trace(name: str) -> list[tuple[str, dict[str, Any]]]:
    lines = []
    for raw in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
        obj = json.loads(raw)
        lines.append((obj["dir"], obj["event"]))
    return lines


@dataclass
class Replay:
    session: RealtimeSession
    received: list[object] = field(default_factory=list)  # everything receive() returned
    sent: list[str] = field(default_factory=list)  # JSON text send() returned

    def of_type(self, cls: type) -> list[Any]:
        return [x for x in self.received if isinstance(x, cls)]


def replay(name: str, session: RealtimeSession | None = None) -> Replay:
    """Feed `<` lines to receive() as text and send `>` lines through send().

    Sent text must equal the recorded client event exactly (same fields, same values).
    """
    result = Replay(session or RealtimeSession())
    for direction, event in load_trace(name):
        if direction == "<":
            result.received.extend(result.session.receive(json.dumps(event)))
        else:
            text = result.session.send(parse_client_event(event))
            sent = json.loads(text)
            if "event_id" not in event:
                sent.pop("event_id", None)  # auto-assigned by the session
            assert sent == event, f"sent {sent} != recorded {event}"
            result.sent.append(text)
    return result
