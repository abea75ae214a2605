"""Voice backends: what a session talks to, above any one wire protocol."""
