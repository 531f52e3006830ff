"""The daemon's own commands on a real DaemonContext, without a camera or a broker."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from emotiond.config import Config, MqttConfig
from emotiond.context import DaemonContext, Health
from emotiond.daemon_commands import DaemonCommands, config_diff
from emotiond.events import Event, PrivacyEvent


class Target:
    """A snapshot target that keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def publish_snapshot(self, jpeg: bytes) -> str:
        self.sent.append(jpeg)
        return "t/snapshot"


def make(config: Config, path: Path | None = None) -> tuple[DaemonContext, list[Event], list[Config]]:
    emitted: list[Event] = []
    holder = [config]
    ctx = DaemonContext(lambda: holder[-1], emitted.append, Health, lambda: None)
    DaemonCommands(ctx, path, holder.append)
    return ctx, emitted, holder


def test_privacy_toggles_emits_and_forgets_the_frame() -> None:
    ctx, emitted, _ = make(Config())
    ctx.note_frame(np.zeros((4, 4, 3), np.uint8), ())
    assert ctx.command("privacy", {}) == {"ok": True, "privacy": True}
    assert emitted == [PrivacyEvent(True, timestamp=emitted[0].timestamp)] and ctx.latest_frame() is None
    assert ctx.command("privacy", {"enabled": "yes"})["ok"] is False
    assert ctx.command("privacy", {"enabled": False})["privacy"] is False


def test_snapshot_needs_the_switch_a_frame_and_a_target() -> None:
    ctx, _, _ = make(Config())
    assert "disabled" in ctx.command("snapshot", {})["error"]
    ctx, _, _ = make(Config(mqtt=MqttConfig(snapshots=True)))
    assert "no frame" in ctx.command("snapshot", {})["error"]
    ctx.note_frame(np.full((8, 12, 3), 200, np.uint8), ())
    assert "not connected" in ctx.command("snapshot", {})["error"]
    assert "quality" in ctx.command("snapshot", {"quality": 5})["error"]
    target = Target()
    ctx.set_snapshot_target(target)
    result = ctx.command("snapshot", {"quality": 50})
    assert result["ok"] and result["topic"] == "t/snapshot" and (result["width"], result["height"]) == (12, 8)
    assert target.sent[0][:2] == b"\xff\xd8" and result["bytes"] == len(target.sent[0])
    ctx.set_privacy(True)
    assert "privacy" in ctx.command("snapshot", {})["error"] and len(target.sent) == 1


def test_reload_applies_safe_keys_and_tells_the_listeners(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[mqtt]\nmin_interval = 7.0\nhost = "elsewhere"\n')
    ctx, _, holder = make(Config(), path)
    heard: list[Config] = []
    ctx.on_config_change(heard.append)
    result = ctx.command("reload", {})
    assert result["applied"] == ["mqtt.min_interval"] and result["restart_required"] == ["mqtt.host"]
    assert holder[-1].mqtt.min_interval == 7.0 and holder[-1].mqtt.host == Config().mqtt.host
    assert heard == [holder[-1]]
    assert "no arguments" in ctx.command("reload", {"x": 1})["error"]
    assert make(Config())[0].command("reload", {})["error"].startswith("reload: no config file")


def test_config_diff_names_nested_keys() -> None:
    new = dataclasses.replace(Config(), mqtt=dataclasses.replace(Config().mqtt, port=1884))
    assert config_diff(Config(), new) == ["mqtt.port"]
