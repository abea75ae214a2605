"""The GPT-Live side of the mock server: `/v1/live/sessions`, the documented wire protocol.

One continuous output track paced in real time (one `session.output_audio.delta` per
`chunk_ms`, digital silence between replies), input audio with a VAD (the "model" yields
when the user talks over it), transcripts as pieces with timeline offsets, and delegation
to a Responses "backend" whose events come wrapped in `response.event`. What is said and
which tools are called comes from the same `Scenario` the Realtime mock uses.
"""

from foreman.testing.mock_realtime.live.session import LiveMockSession

__all__ = ["LiveMockSession"]
