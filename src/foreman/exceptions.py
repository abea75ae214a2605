"""One exception hierarchy for Foreman, split by who is at fault.

    ForemanError
    ├── ConfigError              the operator: a bad config file or environment value
    ├── AudioFormatError         the caller: an unknown or unsupported audio format
    ├── ProtocolError
    │   ├── RemoteProtocolError  the peer sent something that breaks the protocol
    │   └── InvalidState         we were asked to do something the state machine forbids
    ├── SessionClosed            the session (or its connection) is gone
    ├── ConversationEnded        raised inside a session's tasks to end it, with the reason
    ├── BackendError             the voice backend failed (connect refused, auth, fatal error)
    ├── ToolError
    │   ├── ToolArgumentsInvalid the model's arguments do not match the tool's schema
    │   ├── ToolDenied           the gatekeeper or a human said no
    │   └── ToolTimeout          the executor ran past its time limit
    └── ApprovalTimeout          nobody answered an approval prompt in time

Messages are one line and safe to show to a user: they never contain secrets.
"""

from __future__ import annotations


class ForemanError(Exception):
    """Base class of every error Foreman raises on purpose."""


class ConfigError(ForemanError):
    """The configuration is invalid; the message names the file and the key."""


class AudioFormatError(ForemanError, ValueError):
    """An audio format name or parameter is not supported."""


class ProtocolError(ForemanError):
    """A protocol rule was broken."""


class RemoteProtocolError(ProtocolError):
    """The peer sent a frame or message that cannot be understood."""


class InvalidState(ProtocolError):
    """The operation is not allowed in the current state (names role, state and event)."""


class SessionClosed(ForemanError):
    """The session or its connection has closed."""


class ConversationEnded(ForemanError):
    """Ends a conversation session from any of its tasks; `reason` is recorded as given."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BackendError(ForemanError):
    """The voice backend failed; `code` is the service's error code when there is one."""

    def __init__(self, message: str, *, code: str | None = None, fatal: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.fatal = fatal


class ToolError(ForemanError):
    """A tool call could not be completed."""


class ToolArgumentsInvalid(ToolError):
    """The model's arguments failed validation against the tool's JSON Schema."""


class ToolDenied(ToolError):
    """Policy or a human denied the tool call."""


class ToolTimeout(ToolError):
    """The tool's executor ran past its time limit."""


class ApprovalTimeout(ForemanError):
    """An approval prompt expired without an answer."""
