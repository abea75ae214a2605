"""The desk assistant: microphone, speaker, the wake sentinel and the text/voice modes."""
