"""send_email over SMTP (implicit TLS or STARTTLS, with AUTH) from `[email]`.

smtplib blocks, so each send runs in a worker thread; the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from foreman.config import EmailConfig
from foreman.exceptions import ToolError
from foreman.tools.executors.base import Invocation


def _tls_context(config: EmailConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if config.ca_file:
        ctx.load_verify_locations(cafile=config.ca_file)
    return ctx


def send_message_sync(config: EmailConfig, message: EmailMessage) -> None:
    """Deliver one message; raises ToolError with the server's complaint, never the password."""
    if not config.host or not config.from_addr:
        raise ToolError("email is not configured (email.host, email.from_addr)")
    try:
        smtp: smtplib.SMTP
        if config.use_tls:
            smtp = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_s, context=_tls_context(config)
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        with smtp:
            smtp.ehlo()
            if config.starttls and not config.use_tls:
                smtp.starttls(context=_tls_context(config))
                smtp.ehlo()
            if config.username:
                smtp.login(config.username, config.password.get_secret_value())
            smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise ToolError(f"the mail server refused the login ({exc.smtp_code})") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise ToolError(
            f"the mail server refused the recipients {sorted(exc.recipients)}"
        ) from None
    except smtplib.SMTPException as exc:
        raise ToolError(f"mail delivery failed: {type(exc).__name__}: {exc}") from None
    except (OSError, ssl.SSLError) as exc:
        raise ToolError(
            f"cannot reach the mail server {config.host}:{config.port}: {exc}"
        ) from None


async def send_email(args: dict[str, Any], inv: Invocation) -> dict[str, Any]:
    config: EmailConfig = inv.config
    msg = EmailMessage()
    msg["From"] = config.from_addr
    to = args["to"] if isinstance(args["to"], list) else [args["to"]]
    msg["To"] = ", ".join(to)
    if args.get("cc"):
        msg["Cc"] = ", ".join(args["cc"])
    msg["Subject"] = args["subject"]
    msg["Date"] = formatdate(inv.clock.wall(), localtime=False)
    msg["Message-ID"] = make_msgid(domain=config.from_addr.partition("@")[2] or None)
    msg.set_content(args["body"])
    await asyncio.to_thread(send_message_sync, config, msg)
    return {"status": "sent", "to": to, "subject": args["subject"]}
