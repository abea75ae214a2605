"""Fixtures of the client tests: the served app stack (see client_stack.py)."""

from client_stack import stack

__all__ = ["stack"]
