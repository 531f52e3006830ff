"""HTTP Basic authentication for the dashboard: user ``emotiond``, the password from env or a file."""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Mapping
from pathlib import Path

from emotiond.config import ConfigError, WebConfig

USER = "emotiond"
REALM = "emotiond"


def read_password(w: WebConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The dashboard password (as for MQTT: ``password_env`` or ``password_file``), None when unset."""
    env = os.environ if environ is None else environ
    if w.password_env:
        value = env.get(w.password_env)
        if value is None:
            raise ConfigError(f"web.password_env: environment variable {w.password_env} is not set")
    elif w.password_file:
        path = Path(w.password_file)
        if not path.is_absolute() and env.get("CREDENTIALS_DIRECTORY"):
            path = Path(env["CREDENTIALS_DIRECTORY"]) / path
        try:
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"web.password_file: cannot read {path}: {exc.strerror or exc}") from None
    else:
        return None
    if not value:
        raise ConfigError("web: the password is empty")
    return value


def authorized(header: str | None, password: str | None) -> bool:
    """Whether an ``Authorization`` header carries user ``emotiond`` and ``password`` (always, without one)."""
    if password is None:
        return True
    if not header or not header.startswith("Basic "):
        return False
    try:
        user, sep, given = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    ok_user = hmac.compare_digest(user.encode(), USER.encode())
    ok_password = hmac.compare_digest(given.encode(), password.encode())
    return bool(sep) and ok_user and ok_password
