"""Foreman: a realtime voice assistant core (phone line and desk) with gated tools."""

__version__ = "0.1.0"
DISTRIBUTION = "foreman-voice"  # the name on the package index (`pip install foreman-voice`)
