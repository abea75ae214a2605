"""Foreman: a realtime voice assistant core (phone line and desk) with gated tools."""

__version__ = "0.1.0"
