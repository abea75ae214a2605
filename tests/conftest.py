"""Shared fixtures. Timeouts: foreman.testing.timeouts.unit (scaled by an env variable)."""
