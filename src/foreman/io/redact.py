"""Keep secrets out of logs that third-party libraries write for us.

`websockets` logs the whole handshake at DEBUG, `Authorization: Bearer sk-…` included. Its
connections get a logger with this filter, so the wire trace stays useful and the key never
reaches a handler.
"""

from __future__ import annotations

import logging
import re

_SECRETS = re.compile(
    r"(?i)(authorization:\s*(?:bearer|basic)\s+|bearer\s+|basic\s+|openai-insecure-api-key\.)"
    r"[^\s,;\"']+"
    r"|sk-[A-Za-z0-9_\-]{6,}"
)


def redact(text: str) -> str:
    """Replace bearer/basic credentials and OpenAI-style keys with ***."""
    return _SECRETS.sub(lambda m: (m.group(1) or "") + "***", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def redacting_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
    return logger
