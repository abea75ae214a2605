"""The chat tests import their stack from chat_stack.py (next to them)."""
