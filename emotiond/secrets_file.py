"""A password from an environment variable or a file (systemd ``LoadCredential=``), one rule for every
section that has ``password_env`` / ``password_file`` (MQTT, the web dashboard)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from emotiond.config import ConfigError


def read_secret(section: str, password_env: str, password_file: str,
                environ: Mapping[str, str] | None = None) -> str | None:
    """The configured password, None when neither key is set; a relative file name is looked up in
    ``$CREDENTIALS_DIRECTORY``. Problems are ConfigErrors naming ``section``'s key."""
    env = os.environ if environ is None else environ
    if password_env:
        if password_env not in env:
            raise ConfigError(f"{section}.password_env: environment variable {password_env} is not set")
        return env[password_env]
    if password_file:
        path = Path(password_file)
        if not path.is_absolute() and env.get("CREDENTIALS_DIRECTORY"):
            path = Path(env["CREDENTIALS_DIRECTORY"]) / path
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"{section}.password_file: cannot read {path}: {exc.strerror or exc}") from None
    return None
