"""send_email against a real SMTP server on loopback (aiosmtpd) with STARTTLS or implicit
TLS, and AUTH required."""

from __future__ import annotations

import shutil
import ssl
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr

from foreman.config import EmailConfig
from foreman.exceptions import ToolError
from foreman.tools.executors.email import send_message_sync

from .servers import free_port, self_signed_cert
from .test_executors import invoke

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

USER, PASSWORD = "foreman", "s3cret-pw"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:  # scripts/test should install it (Debian: openssl)
        pytest.skip("the openssl CLI is needed to make the test certificate")
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=["starttls", "implicit"])
def smtp(
    request: pytest.FixtureRequest, cert: tuple[Path, Path]
) -> Iterator[tuple[Inbox, EmailConfig]]:
    inbox = Inbox()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(*cert)
    port = free_port()
    implicit = request.param == "implicit"
    kwargs: dict[str, Any] = dict(
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_required=True,
        # aiosmtpd tracks TLS only for STARTTLS; on implicit TLS the link is already secure
        auth_require_tls=not implicit,
        # smtplib falls back from PLAIN to LOGIN after a refusal; one mechanism keeps the
        # refusal a clean 535
        auth_exclude_mechanism=["LOGIN"],
    )
    if implicit:
        kwargs["ssl_context"] = server_ctx
    else:
        kwargs.update(tls_context=server_ctx, require_starttls=True)
    controller = Controller(inbox, **kwargs)
    controller.start()
    config = EmailConfig(
        host="127.0.0.1",
        port=port,
        username=USER,
        password=SecretStr(PASSWORD),
        from_addr="foreman@example.com",
        starttls=not implicit,
        use_tls=implicit,
        timeout_s=5,
        ca_file=str(cert[0]),
    )
    try:
        yield inbox, config
    finally:
        controller.stop()


async def test_send_email_over_tls_with_auth(smtp: tuple[Inbox, EmailConfig]) -> None:
    inbox, config = smtp
    result = await invoke(
        "send_email",
        {
            "to": ["ann@example.com"],
            "cc": ["bo@example.com"],
            "subject": "Dinner",
            "body": "Table for two at 8.",
        },
        email=config,
    )
    assert result == {"status": "sent", "to": ["ann@example.com"], "subject": "Dinner"}
    ((rcpts, raw),) = inbox.messages
    assert sorted(rcpts) == ["ann@example.com", "bo@example.com"]
    msg = message_from_bytes(raw)
    assert msg["Subject"] == "Dinner" and msg["From"] == "foreman@example.com"
    assert "Table for two at 8." in msg.get_payload()


def test_wrong_password_is_a_clear_error_without_the_secret(
    smtp: tuple[Inbox, EmailConfig],
) -> None:
    inbox, config = smtp
    from email.message import EmailMessage

    bad = config.model_copy(update={"password": SecretStr("wrong-pw-xyz")})
    msg = EmailMessage()
    msg["To"], msg["Subject"] = "a@example.com", "x"
    with pytest.raises(ToolError, match="refused the login") as err:
        send_message_sync(bad, msg)
    assert "wrong-pw-xyz" not in str(err.value) and inbox.messages == []


def test_untrusted_certificate_is_refused(smtp: tuple[Inbox, EmailConfig]) -> None:
    inbox, config = smtp
    from email.message import EmailMessage

    untrusting = config.model_copy(update={"ca_file": ""})
    with pytest.raises(ToolError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        send_message_sync(untrusting, EmailMessage())
    assert inbox.messages == []


def test_not_configured() -> None:
    from email.message import EmailMessage

    with pytest.raises(ToolError, match="email is not configured"):
        send_message_sync(EmailConfig(), EmailMessage())
