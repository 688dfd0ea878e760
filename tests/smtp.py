"""An SMTP sink for tests: a real aiosmtpd server on a free port that keeps what it gets.

    sink = SmtpSink(); sink.start()            # or: with SmtpSink() as sink:
    settings = Settings(smtp_host=sink.host, smtp_port=sink.port, ...)
    message = sink.wait_for("anna@example.org", timeout=10)   # sync (e2e) tests
    message = await sink.wait_for_async("anna@example.org")   # async tests
    sink.stop()

The server runs in its own thread with its own event loop, so it works the same from
synchronous Playwright tests and from async tests whose loop also serves the portal.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
import threading
import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

LINK = re.compile(r"https?://\S+")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.sink._add(message, [str(r).lower() for r in envelope.rcpt_tos])
        return "250 Message accepted for delivery"


class SmtpSink:
    """Collects every message; ``.messages`` in arrival order."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or _free_port()
        self.messages: list[EmailMessage] = []
        self._recipients: list[list[str]] = []
        self._changed = threading.Condition()
        self._controller: Controller | None = None

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> SmtpSink:
        self._controller = Controller(
            _Handler(self), hostname=self.host, port=self.port, ready_timeout=10
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reading ------------------------------------------------------------------
    def _add(self, message: EmailMessage, recipients: list[str]) -> None:
        with self._changed:
            self.messages.append(message)
            self._recipients.append(recipients)
            self._changed.notify_all()

    def _find(self, to: str, after: int) -> EmailMessage | None:
        wanted = to.lower()
        for index in range(after, len(self.messages)):
            message = self.messages[index]
            header = str(message.get("To", "")).lower()
            if wanted in self._recipients[index] or wanted in header:
                return message
        return None

    def messages_to(self, to: str) -> list[EmailMessage]:
        wanted = to.lower()
        with self._changed:
            return [
                m for m, rcpts in zip(self.messages, self._recipients, strict=True)
                if wanted in rcpts or wanted in str(m.get("To", "")).lower()
            ]

    def wait_for(self, to: str, timeout: float = 10.0, *, after: int = 0) -> EmailMessage:
        """The first message to ``to`` (from index ``after``), waiting up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self._find(to, after)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no email to {to} within {timeout} s")
                self._changed.wait(remaining)

    async def wait_for_async(
        self, to: str, timeout: float = 10.0, *, after: int = 0  # noqa: ASYNC109
    ) -> EmailMessage:
        """Like ``wait_for`` without blocking the caller's event loop."""
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                found = self._find(to, after)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no email to {to} within {timeout} s")
            await asyncio.sleep(0.05)

    def clear(self) -> None:
        with self._changed:
            self.messages.clear()
            self._recipients.clear()


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def links_in(message: EmailMessage) -> list[str]:
    return [link.rstrip(".,)") for link in LINK.findall(body_of(message))]
