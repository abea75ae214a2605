"""Every typed Realtime GA event, client and server, in one import.

Server events live in `server_events.py`, client events in `client_events.py`; this module
only re-exports them so callers write `from foreman.protocols.realtime.events import ...`.
"""

from __future__ import annotations

from foreman.protocols.realtime.client_events import *  # noqa: F403
from foreman.protocols.realtime.client_events import __all__ as _client_all
from foreman.protocols.realtime.server_events import *  # noqa: F403
from foreman.protocols.realtime.server_events import __all__ as _server_all

__all__ = [*_client_all, *_server_all]  # noqa: PLE0604
