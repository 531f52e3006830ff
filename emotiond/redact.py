"""Remove credentials from URLs in any text before it is logged, published or printed.

A camera URL such as ``rtsp://user:secret@cam/stream`` (or ``http://cam/video?token=...``) must
reach OpenCV intact but never a log line, an MQTT error event, systemd's STATUS line or a CLI
message. ``redact`` is pure and cheap, so every output channel can apply it to whole strings;
``RedactingFilter`` applies it to every log record a handler emits.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from types import TracebackType

MASK = "***"

# scheme://  then a run of characters that can belong to a URL (stops at whitespace, quotes, brackets).
_URL = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>[^\s'\"<>`]*)")
# Query (or matrix) parameters whose value is a secret; the name is kept, the value masked.
_SECRET_PARAM = re.compile(
    r"(?P<name>[?&;](?:[A-Za-z0-9_.-]*[_.-])?"
    r"(?:password|passwd|pwd|pass|token|access_token|auth|authorization|key|apikey|api_key|secret|sig|signature"
    r"|credential|credentials)=)[^&#;\s]*",
    re.IGNORECASE,
)


def _redact_url(match: re.Match[str]) -> str:
    rest = match.group("rest")
    # Userinfo ends at the last '@' of the token: a password may itself hold '@', ':' or '/' unescaped,
    # and masking a little too much is better than leaking the tail of a password.
    at = rest.rfind("@")
    if at >= 0:
        rest = f"{MASK}@{rest[at + 1:]}"
    rest = _SECRET_PARAM.sub(lambda m: m.group("name") + MASK, rest)
    return match.group("scheme") + rest


def redact(text: str) -> str:
    """``text`` with the userinfo and secret query parameters of every URL in it masked."""
    if "://" not in text:
        return text
    return _URL.sub(_redact_url, text)


class RedactingFilter(logging.Filter):
    """Masks URL credentials in a record's message, exception and stack text (install on handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _print_redacted(exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None,
                    header: str = "") -> None:
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(redact(header + text))


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    _print_redacted(args.exc_type, args.exc_value, args.exc_traceback, f"Exception in thread {name}:\n")


def install(logger: logging.Logger | None = None) -> None:
    """Put a RedactingFilter on every handler of ``logger`` (default: the root logger), once.

    Also redacts the tracebacks Python prints itself for uncaught exceptions (main and threads).
    """
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    sys.excepthook = _print_redacted
    threading.excepthook = _thread_hook
