"""The default device id: a short stable hash of ``/etc/machine-id``, else the hostname.

Two stock Raspberry Pis are both called ``raspberrypi``; a hostname-based id gave them the same
MQTT client id (the broker kept kicking one off) and the same Home Assistant unique_ids (one
device swallowed the other). The machine id is unique per installation and stable across reboots
and renames. It is hashed with a fixed emotiond prefix, as machine-id(5) asks, so the published id
does not reveal the machine id itself and differs from other applications' derived ids.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import socket
from pathlib import Path

log = logging.getLogger(__name__)

MACHINE_ID_FILE = "/etc/machine-id"
ID_PREFIX = b"emotiond device id v1:"
ID_HEX_DIGITS = 12
_MACHINE_ID = re.compile(r"[0-9a-f]{32}")


def sanitize(raw: str) -> str:
    """An id usable in MQTT topics and Home Assistant unique_ids: letters, digits, '_' and '-'."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", raw)


def read_machine_id(path: str | Path) -> str | None:
    """The 32-hex-digit machine id in ``path``; None when missing, unreadable, empty or malformed."""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace").strip().lower()
    except OSError:
        return None
    return text if _MACHINE_ID.fullmatch(text) else None


def id_from_machine_id(machine_id: str) -> str:
    """12 hex digits of sha256(prefix + machine id): stable, and different for each machine."""
    return hashlib.sha256(ID_PREFIX + machine_id.encode("ascii")).hexdigest()[:ID_HEX_DIGITS]


@functools.lru_cache(maxsize=16)
def default_device_id(machine_id_file: str = MACHINE_ID_FILE, hostname: str | None = None) -> str:
    """The id used when ``[device] id`` is empty (cached, so the fallback note is logged once)."""
    machine_id = read_machine_id(machine_id_file) if machine_id_file else None
    if machine_id is not None:
        return id_from_machine_id(machine_id)
    host = socket.gethostname() if hostname is None else hostname
    fallback = sanitize(host or "emotiond")
    log.warning(
        "no usable machine id in %s: device id falls back to the hostname %r; "
        "set [device] id if another device on the broker has the same hostname",
        machine_id_file or "(disabled)", fallback,
    )
    return fallback
