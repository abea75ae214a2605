"""Choosing and building the backend for a session."""

from __future__ import annotations

from collections.abc import Callable

from foreman.backends.interface import BackendOptions, VoiceBackend
from foreman.config import Settings

BackendFactory = Callable[[BackendOptions], VoiceBackend]


def make_backend_factory(settings: Settings) -> BackendFactory:
    """The default factory: OpenAI Realtime GA over WebSocket for every session."""
    from foreman.backends.openai_realtime import OpenAIRealtimeBackend

    def factory(options: BackendOptions) -> VoiceBackend:
        return OpenAIRealtimeBackend(options, settings.realtime)

    return factory
