"""Pure audio code: formats, G.711, streaming resampling, conversion plans, jitter buffer,
playback tracking and VAD. numpy and soxr only (plus onnxruntime, lazily, for the optional
`silero` module); no asyncio, no devices, no clock.

    formats   AudioFormat, frame arithmetic, GA / legacy names
    g711      µ-law / A-law tables (ITU-T G.191 bit-exact)
    resample  StreamResampler (soxr, state across chunks)
    convert   build_plan(src, dst) -> Converter (passthrough | transcode | decode-resample-encode)
    jitter    JitterBuffer, Frame
    playback  PlaybackTracker, Mark, Truncation
    vad       EnergyVad, VadEvent, HysteresisGate
    silero    SileroVad (onnxruntime only)
"""

from foreman.audio.formats import PCM16_24K, PCMA_8K, PCMU_8K, AudioFormat, Encoding

__all__ = ["PCM16_24K", "PCMA_8K", "PCMU_8K", "AudioFormat", "Encoding"]
