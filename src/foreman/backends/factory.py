"""Choosing and building the backend for a session."""

from __future__ import annotations

import functools
from collections.abc import Callable

from foreman.backends.interface import BackendOptions, VoiceBackend
from foreman.config import Settings

BackendFactory = Callable[[BackendOptions], VoiceBackend]


def make_backend_factory(settings: Settings) -> BackendFactory:
    """The default factory: `[realtime] api` chooses OpenAI Realtime GA or GPT-Live, both
    over WebSocket, for every session."""
    from foreman.io.realtime_ws import open_realtime

    # A server event bigger than this closes the model's socket (1009) instead of filling
    # memory: the bound a call's backend needs from [limits].
    connector = functools.partial(open_realtime, max_size=settings.limits.model_max_message_bytes)
    if settings.realtime.api == "live":
        from foreman.backends.openai_live import OpenAILiveBackend

        def live_factory(options: BackendOptions) -> VoiceBackend:
            return OpenAILiveBackend(options, settings.realtime, settings.live, connector=connector)

        return live_factory
    from foreman.backends.openai_realtime import OpenAIRealtimeBackend

    def factory(options: BackendOptions) -> VoiceBackend:
        return OpenAIRealtimeBackend(options, settings.realtime, connector=connector)

    return factory
