import logging

import pytest

from foreman.io.redact import redact, redacting_logger


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("> Authorization: Bearer sk-proj-abc123XYZ", "sk-proj-abc123XYZ"),
        ("authorization: basic QUMxMjM6c2VjcmV0", "QUMxMjM6c2VjcmV0"),
        ("key=sk-live-0123456789abcdef in a sentence", "sk-live-0123456789abcdef"),
        ("subprotocol openai-insecure-api-key.ek_abc123", "ek_abc123"),
    ],
)
def test_secrets_are_redacted(text: str, leak: str) -> None:
    assert leak not in redact(text) and "***" in redact(text)


def test_plain_text_is_untouched() -> None:
    assert (
        redact("GET /v1/realtime?model=gpt-realtime-2.1")
        == "GET /v1/realtime?model=gpt-realtime-2.1"
    )


def test_the_filter_cleans_formatted_records(caplog: pytest.LogCaptureFixture) -> None:
    log = redacting_logger("foreman.test.redact")
    with caplog.at_level(logging.DEBUG, logger="foreman.test.redact"):
        log.debug("> %s: %s", "Authorization", "Bearer sk-secret-value-1")
    assert "sk-secret-value-1" not in caplog.text and "Bearer ***" in caplog.text
