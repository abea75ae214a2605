"""Pure audio code: formats, G.711, streaming resampling, conversion plans, jitter buffer,
playback tracking and VAD. numpy and soxr only; no asyncio, no devices."""

from foreman.audio.formats import PCM16_24K, PCMA_8K, PCMU_8K, AudioFormat, Encoding

__all__ = ["PCM16_24K", "PCMA_8K", "PCMU_8K", "AudioFormat", "Encoding"]
