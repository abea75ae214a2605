"""Sessions: one conversation between an audio endpoint and a voice backend, the pure
cores that decide turns and utterances, and the registry of every live session."""
