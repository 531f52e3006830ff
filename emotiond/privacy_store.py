"""Privacy mode on disk, so a restart (watchdog, crash, update, power cut) never silently resumes analysis.

One small JSON file in the state directory. It is written atomically (temporary file, fsync,
rename, fsync of the directory): after a power cut it holds either the old or the new value, never
a torn one. An unreadable file counts as privacy ON: when in doubt, the camera stays closed.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

FILE_NAME = "privacy.json"


class PrivacyStore:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME

    def load(self) -> bool:
        """The persisted mode: False when never set; True when the file is unreadable (fail closed)."""
        try:
            body = json.loads(self.path.read_text(encoding="utf-8"))
            enabled = body["enabled"]
            if not isinstance(enabled, bool):
                raise TypeError(f"'enabled' is {type(enabled).__name__}, not true/false")
            return enabled
        except FileNotFoundError:
            return False
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("privacy: cannot read %s (%s); staying in privacy mode until it is turned off", self.path,
                      getattr(exc, "strerror", None) or exc)
            return True

    def save(self, enabled: bool) -> bool:
        """Write the mode durably; False (logged) when the state directory is not writable."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, json.dumps({"enabled": enabled}).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)  # the rename itself reaches the disk
            finally:
                os.close(dfd)
            return True
        except OSError as exc:
            log.error("privacy: cannot write %s (%s): the mode will not survive a restart", self.path,
                      exc.strerror or exc)
            return False
