"""The daemon's own commands: ``privacy``, ``reload`` (re-read the config file) and ``snapshot``.

They belong to the daemon, not to a sink: ``reload`` changes the daemon's config and log level and
tells components through ``on_config_change``; ``snapshot`` encodes the newest frame and hands the
JPEG to whichever output registered itself as the snapshot target (the MQTT sink).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import cv2

from emotiond.config import Config, ConfigError, load_config
from emotiond.context import CommandError, DaemonContext

log = logging.getLogger("emotiond.daemon")

# Settings `reload` can change on the fly; everything else needs a restart.
RELOADABLE = frozenset({"mqtt.min_interval", "mqtt.min_dwell", "mqtt.heartbeat", "mqtt.max_command_bytes",
                        "mqtt.queue_size", "output.log_level"})


def config_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the config keys whose values differ."""
    if dataclasses.is_dataclass(old) and dataclasses.is_dataclass(new):
        out: list[str] = []
        for f in dataclasses.fields(old):
            out += config_diff(getattr(old, f.name), getattr(new, f.name), f"{prefix}{f.name}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


def apply_reloadable(current: Any, new: Any, section: str, applied: list[str]) -> Any:
    """``current`` (one config section) with the applied keys of that section taken from ``new``."""
    keys = [k.split(".", 1)[1] for k in applied if k.startswith(section + ".")]
    return dataclasses.replace(current, **{k: getattr(new, k) for k in keys}) if keys else current


class DaemonCommands:
    """Registers and runs the daemon-level commands on a ``DaemonContext``."""

    def __init__(self, ctx: DaemonContext, config_path: Path | None, set_config: Any) -> None:
        self.ctx = ctx
        self.config_path = config_path
        self._set_config = set_config  # Callable[[Config], None]: the daemon adopts the reloaded config
        ctx.register_command("privacy", self.privacy)
        ctx.register_command("reload", self.reload)
        ctx.register_command("snapshot", self.snapshot)

    def privacy(self, args: dict[str, Any]) -> dict[str, Any]:
        value = args.get("enabled", not self.ctx.privacy)
        if not isinstance(value, bool):
            raise CommandError("privacy: 'enabled' must be true or false")
        if self.ctx.privacy and not value and not self.ctx.config.privacy.remote_off:
            # commands arrive over MQTT or the control socket; the physical button calls set_privacy
            raise CommandError("privacy mode can only be turned off with the physical button "
                               "(privacy.remote_off = false)")
        self.ctx.set_privacy(value)
        return {"privacy": self.ctx.privacy}

    def reload(self, args: dict[str, Any]) -> dict[str, Any]:
        """Re-read the config file: apply what is safe now, report what needs a restart."""
        if args:
            raise CommandError(f"reload takes no arguments, got {sorted(args)}")
        if self.config_path is None:
            raise CommandError("reload: no config file (running on built-in defaults)")
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            raise CommandError(f"reload: {exc}") from None
        current = self.ctx.config
        changed = config_diff(current, new)
        applied = [k for k in changed if k in RELOADABLE]
        restart = [k for k in changed if k not in RELOADABLE]
        if "output.log_level" in applied:
            logging.getLogger().setLevel(getattr(logging, new.output.log_level.upper()))
        config: Config = dataclasses.replace(current, mqtt=apply_reloadable(current.mqtt, new.mqtt, "mqtt", applied),
                                             output=apply_reloadable(current.output, new.output, "output", applied))
        self._set_config(config)
        for listener in self.ctx.config_listeners:
            listener(config)
        log.info("reloaded %s: applied %s; needs restart: %s", self.config_path, applied or "nothing",
                 restart or "nothing")
        return {"config": str(self.config_path), "applied": applied, "restart_required": restart}

    def snapshot(self, args: dict[str, Any]) -> dict[str, Any]:
        """One JPEG of the newest frame to the snapshot target (``mqtt.snapshots`` must be on)."""
        if not self.ctx.config.mqtt.snapshots:
            raise CommandError("snapshots are disabled (set snapshots = true in [mqtt] to allow them)")
        if self.ctx.privacy:
            raise CommandError("privacy mode is on: no snapshot")
        quality = args.get("quality", 80)
        if not isinstance(quality, int) or isinstance(quality, bool) or not 10 <= quality <= 95:
            raise CommandError("snapshot: 'quality' must be an integer from 10 to 95")
        image = self.ctx.latest_frame()
        if image is None:
            raise CommandError("no frame captured yet")
        target = self.ctx.snapshot_target
        if target is None:
            raise CommandError("not connected to the broker")
        ok, jpeg = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
        if not ok:
            raise CommandError("JPEG encoding failed")
        data = jpeg.tobytes()
        topic = target.publish_snapshot(data)
        return {"topic": topic, "bytes": len(data), "width": int(image.shape[1]), "height": int(image.shape[0])}
