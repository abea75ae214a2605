"""Audio formats as the Realtime GA wire names them (`audio.input.format`,
`audio.output.format`): `{type: "audio/pcm", rate: 24000}`, `{type: "audio/pcmu"}`,
`{type: "audio/pcma"}`. Only these three exist on the wire.
Reference: https://platform.openai.com/docs/api-reference/realtime-client-events/session/update
"""

from __future__ import annotations

from typing import Any

from foreman.audio.formats import PCM16_24K, PCMA_8K, PCMU_8K, AudioFormat, Encoding
from foreman.exceptions import AudioFormatError

__all__ = ["format_from_wire", "format_to_wire"]


def format_to_wire(fmt: AudioFormat) -> dict[str, Any]:
    """The GA format object for `fmt`; AudioFormatError for a format the API lacks."""
    if fmt.encoding is Encoding.PCM16:
        if fmt.sample_rate != 24000:
            raise AudioFormatError(
                f"the Realtime API takes PCM16 at 24000 Hz only, not {fmt.sample_rate} Hz"
            )
        return {"type": "audio/pcm", "rate": 24000}
    return {"type": "audio/pcmu" if fmt.encoding is Encoding.PCMU else "audio/pcma"}


def format_from_wire(obj: Any) -> AudioFormat:
    """The AudioFormat of a GA format object; AudioFormatError for anything else."""
    kind = obj.get("type") if isinstance(obj, dict) else None
    if kind == "audio/pcm":
        rate = obj.get("rate", 24000)
        if rate != 24000:
            raise AudioFormatError(f"audio/pcm supports rate 24000 only, got {rate!r}")
        return PCM16_24K
    if kind == "audio/pcmu":
        return PCMU_8K
    if kind == "audio/pcma":
        return PCMA_8K
    raise AudioFormatError(
        f"unknown Realtime audio format {obj!r}; valid types: audio/pcm, audio/pcmu, audio/pcma"
    )
