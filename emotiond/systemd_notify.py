"""The sd_notify protocol with the standard library: one datagram to ``$NOTIFY_SOCKET`` per message.

Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op, so the daemon never needs to know how
it was started. Send failures are logged once and never raised: a lost ``STATUS=`` must not stop
the pipeline (a lost ``WATCHDOG=1`` is exactly what systemd is there to notice).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

from emotiond.redact import redact

log = logging.getLogger(__name__)


def _address(raw: str) -> str | bytes | None:
    """Socket path from ``NOTIFY_SOCKET``; '@' means Linux's abstract namespace (a leading NUL)."""
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    return None  # vsock: and other transports are not used on a Pi


class Notifier:
    """Sends ``KEY=value`` lines to systemd; ``enabled`` is false when not run by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self.address = _address(raw) if raw else None
        if raw and self.address is None:
            log.warning("NOTIFY_SOCKET=%r: unsupported address, systemd notifications disabled", raw)
        self._sock: socket.socket | None = None
        self._failed = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send the lines as one message; returns whether it was delivered (False when disabled)."""
        if self.address is None or not lines:
            return False
        payload = "\n".join(redact(line) for line in lines).encode()  # STATUS may name the camera URL
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(payload, self.address)
        except OSError as exc:
            if not self._failed:
                log.warning("systemd notification to %r failed: %s", self.address, exc)
                self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """systemd's watchdog timeout in seconds (``WATCHDOG_USEC``), or None when it is not enabled for us.

    ``WATCHDOG_PID``, when set, names the process that must ping; a child that inherited the
    environment must not.
    """
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = env.get("WATCHDOG_PID")
    if owner:
        try:
            if int(owner) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec / 1_000_000
