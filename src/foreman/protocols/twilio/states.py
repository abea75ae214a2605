"""The Media Streams state machine: one transition table for both ends of the socket.

https://www.twilio.com/docs/voice/media-streams/websocket-messages

Keyed the way h11 keys its tables: `(role, phase, event) -> next phase`, where `role` is whose
end this is, `server` (Foreman) or `caller` (Twilio's side, as a test double plays it), and
`event` is a direction and a wire name ("receive start", "send media") or "connection lost".
A key that is not in the table is illegal for that role in that phase:

* sending it raises `InvalidState` naming role, phase and event (our bug), or `SessionClosed`
  once the stream has ended (an ordinary hang-up racing with outgoing audio);
* receiving it never raises: each role turns it into a counted event (`BadMessage`,
  `Rejected`) or drops it, and its phase does not change.

    server:  waiting ──receive start──> streaming ──receive stop──> stopped
    caller:  idle ──send connected──> connected ──send start──> streaming ──send stop──> stopped
    either:  any phase ──connection lost──> stopped
"""

from __future__ import annotations

from typing import Final, Literal

from foreman.exceptions import InvalidState, SessionClosed

Role = Literal["server", "caller"]
Phase = Literal["idle", "connected", "waiting", "streaming", "stopped"]
Event = Literal[
    "receive connected",
    "receive start",
    "receive media",
    "receive mark",
    "receive dtmf",
    "receive stop",
    "receive clear",
    "send connected",
    "send start",
    "send media",
    "send mark",
    "send dtmf",
    "send stop",
    "send clear",
    "connection lost",
]

PHASES: Final[dict[Role, tuple[Phase, ...]]] = {
    "server": ("waiting", "streaming", "stopped"),
    "caller": ("idle", "connected", "streaming", "stopped"),
}
ENDED: Final[Phase] = "stopped"

_LEGAL: dict[tuple[Role, Phase, Event], Phase] = {
    # Foreman's end. Twilio speaks first, and nothing can be sent before its `start` (every
    # outgoing message needs the start's streamSid); `connected` is tolerated, never required.
    ("server", "waiting", "receive connected"): "waiting",
    ("server", "waiting", "receive start"): "streaming",
    ("server", "waiting", "receive stop"): "stopped",
    ("server", "streaming", "receive connected"): "streaming",
    ("server", "streaming", "receive media"): "streaming",
    ("server", "streaming", "receive mark"): "streaming",
    ("server", "streaming", "receive dtmf"): "streaming",
    ("server", "streaming", "receive stop"): "stopped",
    ("server", "streaming", "send media"): "streaming",
    ("server", "streaming", "send mark"): "streaming",
    ("server", "streaming", "send clear"): "streaming",
    # Twilio's end: connected, start (once), then media / dtmf / mark echoes, then stop. It
    # acts on the server's media/mark/clear only between its start and its stop.
    ("caller", "idle", "send connected"): "connected",
    ("caller", "connected", "send start"): "streaming",
    ("caller", "streaming", "send media"): "streaming",
    ("caller", "streaming", "send mark"): "streaming",
    ("caller", "streaming", "send dtmf"): "streaming",
    ("caller", "streaming", "send stop"): "stopped",
    ("caller", "streaming", "receive media"): "streaming",
    ("caller", "streaming", "receive mark"): "streaming",
    ("caller", "streaming", "receive clear"): "streaming",
}

TRANSITIONS: Final[dict[tuple[Role, Phase, Event], Phase]] = _LEGAL | {
    (role, phase, "connection lost"): ENDED for role, phases in PHASES.items() for phase in phases
}


def _wire_events(role: Role, direction: str) -> frozenset[str]:
    return frozenset(
        event.removeprefix(direction + " ")
        for (r, _, event) in TRANSITIONS
        if r == role and event.startswith(direction + " ")
    )


# The wire events each role knows, legal in some phase; anything else is unknown to it.
RECEIVES: Final[dict[Role, frozenset[str]]] = {
    role: _wire_events(role, "receive") for role in PHASES
}
SENDS: Final[dict[Role, frozenset[str]]] = {role: _wire_events(role, "send") for role in PHASES}

# The table sliced per (role, phase) and keyed by wire name, so the hot path does one dict
# lookup on a row it already holds (no key tuple, no string built per frame).
_Row = dict[str, Phase]
_ROWS: Final[dict[tuple[Role, Phase], tuple[_Row, _Row]]] = {
    (role, phase): (
        {
            event.removeprefix("receive "): nxt
            for (r, p, event), nxt in TRANSITIONS.items()
            if (r, p) == (role, phase) and event.startswith("receive ")
        },
        {
            event.removeprefix("send "): nxt
            for (r, p, event), nxt in TRANSITIONS.items()
            if (r, p) == (role, phase) and event.startswith("send ")
        },
    )
    for role, phases in PHASES.items()
    for phase in phases
}


_SEND_HINTS: Final[dict[tuple[Role, Phase], str]] = {
    ("server", "waiting"): "no start yet",
    ("caller", "idle"): "send connected first",
    ("caller", "connected"): "send start first",
}


class Endpoint:
    """One end of a Media Stream, moved through `TRANSITIONS`. Subclasses set `role` and
    `label` and parse/serialize the wire messages; this class owns the phase."""

    role: Role
    label: str  # names the class and role in errors, e.g. "TwilioStream(server)"

    def __init__(self) -> None:
        self.phase: Phase = PHASES[self.role][0]
        self._receivable, self._sendable = _ROWS[(self.role, self.phase)]

    def connection_lost(self) -> None:
        """The socket closed (with or without `stop`): the stream is over for this end."""
        self._enter(TRANSITIONS[(self.role, self.phase, "connection lost")])

    def _enter(self, phase: Phase) -> None:
        self.phase = phase
        self._receivable, self._sendable = _ROWS[(self.role, phase)]

    def _send(self, event: str) -> None:
        """Take the transition for sending `event`, or raise (see `refusal`)."""
        nxt = self._sendable.get(event)
        if nxt is None:
            raise self.refusal(event)
        if nxt != self.phase:
            self._enter(nxt)

    def refusal(self, event: str, detail: str = "") -> InvalidState | SessionClosed:
        """The error for sending `event` now: `SessionClosed` once the stream has ended,
        `InvalidState` (naming role, phase and event) otherwise."""
        if self.phase == ENDED:
            return SessionClosed(f"{self.label}: cannot send {event}, the stream has ended")
        hint = detail or _SEND_HINTS.get((self.role, self.phase), "")
        return InvalidState(
            f"{self.label}: cannot send {event} in phase {self.phase!r}"
            + (f" ({hint})" if hint else "")
        )


__all__ = [
    "ENDED",
    "PHASES",
    "RECEIVES",
    "SENDS",
    "TRANSITIONS",
    "Endpoint",
    "Event",
    "Phase",
    "Role",
]
