"""HTTP Basic authentication for the dashboard: user ``emotiond``, the password from env or a file."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from emotiond.config import ConfigError, WebConfig
from emotiond.secrets_file import read_secret

USER = "emotiond"
REALM = "emotiond"


def read_password(w: WebConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The dashboard password (as for MQTT: ``password_env`` or ``password_file``), None when unset."""
    value = read_secret("web", w.password_env, w.password_file, environ)
    if value == "":
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
