"""Shared pieces of the GPT-Live tests: a backend on the mock, settings choosing Live."""

from __future__ import annotations

from typing import Any

from foreman.audio.formats import PCMU_8K, AudioFormat
from foreman.backends.interface import BackendOptions
from foreman.backends.openai_live import OpenAILiveBackend
from foreman.config import Settings, settings_from_dict


def live_settings(
    mock_live_url: str, live: dict[str, Any] | None = None, **realtime: Any
) -> Settings:
    return settings_from_dict(
        {
            "realtime": {"api": "live", **realtime},
            "live": {"endpoint": mock_live_url, **(live or {})},
        }
    )


def live_backend(
    url: str,
    *,
    fmt: AudioFormat = PCMU_8K,
    greeting: str | None = None,
    tools: tuple[dict[str, Any], ...] = (),
    history: tuple[tuple[Any, str], ...] = (),
    recovery: dict[str, Any] | None = None,
    live: dict[str, Any] | None = None,
    realtime: dict[str, Any] | None = None,
    **backend: Any,
) -> OpenAILiveBackend:
    settings = live_settings(url, live, recovery=recovery or {}, **(realtime or {}))
    options = BackendOptions(
        model=settings.live.model,
        endpoint=url,
        voice=settings.live.voice,
        instructions="You are a test assistant.",
        input_format=fmt,
        output_format=fmt,
        tools=tools,
        history=history,
        greeting=greeting,
    )
    return OpenAILiveBackend(options, settings.realtime, settings.live, **backend)
