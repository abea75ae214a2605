"""Per-event cost of the sans-I/O Realtime protocol (not a test).

    PYTHONPATH=src python bench/rt_protocol.py

Measures the hot paths: building `input_audio_buffer.append` for one 20 ms frame (PCM16 24 kHz
= 960 bytes; G.711 = 160 bytes) and receiving one `response.output_audio.delta`.
"""

from __future__ import annotations

import base64
import json
import timeit

from foreman.protocols.realtime import (
    InputAudioBufferAppend,
    RealtimeSession,
    SessionUpdate,
    encode_audio_append,
    encode_client_event,
    parse_server_event,
)
from foreman.testing.speech import synthesize


def per_call_us(stmt: object, number: int) -> float:
    best = min(timeit.repeat(stmt, number=number, repeat=5))  # type: ignore[arg-type]
    return best / number * 1e6


def main() -> None:
    pcm = synthesize("benchmark the realtime protocol hot path", 24000)
    frame_pcm = base64.b64encode(pcm[:960]).decode()
    frame_ulaw = base64.b64encode(pcm[:160]).decode()
    rt = RealtimeSession()
    rt.receive(json.dumps({"type": "session.created", "event_id": "e", "session": {"id": "s"}}))
    rt.send(SessionUpdate({"type": "realtime"}))
    rt.receive(json.dumps({"type": "session.updated", "event_id": "e", "session": {"id": "s"}}))
    rows = [
        ("encode_audio_append, 20 ms pcm16@24k", lambda: encode_audio_append(frame_pcm)),
        ("encode_audio_append, 20 ms g711", lambda: encode_audio_append(frame_ulaw)),
        (
            "json.dumps of the same dict, 20 ms pcm16",
            lambda: json.dumps({"type": "input_audio_buffer.append", "audio": frame_pcm}),
        ),
        (
            "encode_client_event(InputAudioBufferAppend), 20 ms pcm16",
            lambda: encode_client_event(InputAudioBufferAppend(frame_pcm)),
        ),
        ("RealtimeSession.send_audio, 20 ms pcm16", lambda: rt.send_audio(frame_pcm)),
        ("RealtimeSession.send_audio, 20 ms g711", lambda: rt.send_audio(frame_ulaw)),
    ]
    for ms in (20, 100):
        delta = json.dumps(
            {
                "type": "response.output_audio.delta",
                "event_id": "event_1",
                "response_id": "resp_1",
                "item_id": "item_1",
                "output_index": 0,
                "content_index": 0,
                "delta": base64.b64encode(pcm[: 48 * ms]).decode(),
            }
        )
        rows.append(
            (
                f"parse_server_event, {ms} ms pcm16 audio delta",
                lambda d=delta: parse_server_event(d),
            )
        )
        rows.append(
            (f"RealtimeSession.receive, {ms} ms pcm16 audio delta", lambda d=delta: rt.receive(d))
        )
    tdelta = json.dumps(
        {
            "type": "response.output_audio_transcript.delta",
            "event_id": "event_2",
            "response_id": "resp_1",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
            "delta": "Hello ",
            "obfuscation": "abcd",
        }
    )
    rows.append(("RealtimeSession.receive, transcript delta", lambda: rt.receive(tdelta)))
    for name, fn in rows:
        print(f"{name:58s} {per_call_us(fn, 20000):7.2f} us")


if __name__ == "__main__":
    main()
