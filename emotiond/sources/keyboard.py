"""The seed's keys in a terminal: ``a`` records and classifies the voice, ``p`` toggles privacy, ``q`` quits.

Only used when stdin is a terminal (never under systemd or in a pipe). The terminal is put in
cbreak mode (single keys, no echo; Ctrl-C still interrupts) and restored on stop and at exit, so a
crash cannot leave the user's shell without echo. Keys are read in their own thread with a short
select() timeout and turned into the same named commands MQTT and the control socket use.
"""

from __future__ import annotations

import atexit
import logging
import os
import select
import sys
import termios
import threading
import tty
from collections.abc import Callable, Mapping
from typing import IO, Any, Protocol

log = logging.getLogger(__name__)

HELP = "keys: a = listen (record and classify the voice), p = privacy on/off, q = quit"


class KeyHost(Protocol):
    """What the keys act on: named commands and a clean stop (the Daemon, or a component context)."""

    def command(self, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]: ...

    def request_stop(self) -> None: ...


def bindings(host: KeyHost) -> dict[str, Callable[[], None]]:
    def run(name: str, args: dict[str, Any]) -> Callable[[], None]:
        def act() -> None:
            result = host.command(name, args)
            if not result.get("ok"):
                log.warning("key for %s: %s", name, result.get("error"))

        return act

    return {"a": run("capture_audio", {"trigger": "keyboard"}), "p": run("privacy", {}), "q": host.request_stop}


class TerminalKeys:
    """Component reading single keys from a terminal on ``stream`` (stdin by default)."""

    def __init__(self, stream: IO[Any] | None = None, keys: Mapping[str, Callable[[], None]] | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdin
        self._fd = self._stream.fileno()
        self._keys = dict(keys) if keys is not None else None
        self._saved: list[Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_stdin(cls) -> TerminalKeys | None:
        """The component when stdin is a terminal we run in the foreground of; None otherwise
        (systemd, pipes, files, or `emotiond run &`, which SIGTTOU would stop at the first tcsetattr)."""
        try:
            if sys.stdin is None or not sys.stdin.isatty():
                return None
            fd = sys.stdin.fileno()
            return cls() if os.tcgetpgrp(fd) == os.getpgrp() else None
        except (OSError, ValueError):
            return None

    def start(self, host: KeyHost) -> None:
        if self._keys is None:
            self._keys = bindings(host)
        try:
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd, termios.TCSANOW)
        except termios.error as exc:
            log.warning("terminal keys off: %s", exc)
            self._saved = None
            return
        atexit.register(self.restore)
        self._thread = threading.Thread(target=self._read, name="keys", daemon=True)
        self._thread.start()
        log.info(HELP)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self.restore()

    def restore(self) -> None:
        """Put the terminal back as it was (idempotent)."""
        saved, self._saved = self._saved, None
        if saved is not None:
            try:
                termios.tcsetattr(self._fd, termios.TCSADRAIN, saved)
            except termios.error:
                pass
            atexit.unregister(self.restore)

    def _read(self) -> None:
        assert self._keys is not None
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._fd], [], [], 0.2)
                if not ready:
                    continue
                data = os.read(self._fd, 32)
            except OSError:
                return
            if not data:
                return  # the terminal went away
            for key in data.decode("utf-8", "ignore").lower():
                action = self._keys.get(key)
                if action is None:
                    continue
                try:
                    action()
                except Exception:  # a key must never take the daemon down
                    log.exception("key %r failed", key)
