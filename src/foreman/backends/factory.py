"""Choosing and building the backend for a session."""

from __future__ import annotations

import functools
from collections.abc import Callable

from foreman.backends.interface import BackendOptions, VoiceBackend
from foreman.config import Settings, local_engine_selected, voice_target
from foreman.io.realtime_ws import needs_api_key

BackendFactory = Callable[[BackendOptions], VoiceBackend]


def make_backend_factory(settings: Settings) -> BackendFactory:
    """The offline engine when `[local] use` selects it (by default: no OpenAI key is set),
    else the cloud: `[realtime] api` chooses OpenAI Realtime GA or GPT-Live, both over
    WebSocket, for every session."""
    cloud = _cloud_factory(settings)
    if not local_engine_selected(settings):
        return cloud
    local = make_local_factory(settings)
    configured = voice_target(settings).endpoint

    def factory(options: BackendOptions) -> VoiceBackend:
        # A start request that names its own endpoint (a mock, a local proxy) gets it;
        # everything else runs on the offline engine.
        if options.endpoint != configured and not needs_api_key(options.endpoint):
            return cloud(options)
        return local(options)

    factory.runtime = local.runtime  # type: ignore[attr-defined]
    return factory


def _cloud_factory(settings: Settings) -> BackendFactory:
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


def make_local_factory(settings: Settings, **runtime_options: object) -> BackendFactory:
    """The offline engine for every session, sharing one runtime (models load once, on the
    first session, in worker threads). `runtime_options` go to `LocalRuntime` (tests pass a
    model cache or a stand-in LLM)."""
    from foreman.backends.local_engine import LocalEngineBackend
    from foreman.backends.local_runtime import LocalRuntime

    runtime = LocalRuntime(settings, **runtime_options)  # type: ignore[arg-type]

    def factory(options: BackendOptions) -> VoiceBackend:
        return LocalEngineBackend(options, runtime)

    factory.runtime = runtime  # type: ignore[attr-defined]  # for status and benchmarks
    return factory
