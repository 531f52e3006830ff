"""The small OLED (SSD1306/SH1106 over I2C via luma.oled): a sink that keeps a state, a thread that draws it.

Events only update a ``DisplayState``; a thread redraws every ``refresh_seconds`` and sends the
picture over I2C only when it changed, so slow I2C never holds up the event dispatcher and the
camera/broker icons stay current even when no events arrive. A missing display or library is
logged once and the daemon carries on without it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Any

from emotiond.config import DisplayConfig
from emotiond.context import ComponentContext
from emotiond.display_render import DisplayState, render
from emotiond.events import (
    AudioEvent,
    EmotionEvent,
    ErrorEvent,
    Event,
    ListeningEvent,
    PrivacyEvent,
)

log = logging.getLogger(__name__)


class DisplayUnavailable(Exception):
    """No display could be opened; the message says why and what to check."""


def open_device(config: DisplayConfig) -> Any:
    """A luma.oled device for the configured controller, bus and address."""
    try:
        from luma.core.error import Error as LumaError
        from luma.core.interface.serial import i2c
        from luma.oled.device import sh1106, ssd1306
    except ImportError:
        raise DisplayUnavailable("luma.oled is not installed (pip install 'emotiond[display]')") from None
    where = f"{config.driver} on I2C bus {config.i2c_port} at 0x{config.i2c_address:02X}"
    try:
        serial = i2c(port=config.i2c_port, address=config.i2c_address)
        cls = {"ssd1306": ssd1306, "sh1106": sh1106}[config.driver]
        device = cls(serial, width=128, height=64, rotate=config.rotate)
        device.contrast(config.contrast)
    except (LumaError, OSError) as exc:
        raise DisplayUnavailable(
            f"{where}: {exc} (is I2C enabled in raspi-config, is the user in group i2c, does "
            f"`i2cdetect -y {config.i2c_port}` show the address?)"
        ) from None
    return device


def _link_up(ctx: ComponentContext) -> bool | None:
    """Whether the MQTT link is up; None (no icon) when MQTT is not running."""
    status = ctx.link_status("mqtt")
    return None if status is None else status.connected


class DisplaySink:
    """Sink (takes events) and component (draws on its own thread while the daemon runs)."""

    def __init__(
        self,
        config: DisplayConfig,
        device: Any | None = None,
        opener: Callable[[DisplayConfig], Any] = open_device,
        broker: Callable[[], bool | None] | None = None,
    ) -> None:
        self.config = config
        self.device = device
        self._opener = opener
        self._broker = broker
        self._ctx: ComponentContext | None = None
        self._lock = threading.Lock()
        self._state = DisplayState()
        self._shown: bytes | None = None
        self._write_failed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- component ------------------------------------------------------------------------------
    def start(self, ctx: ComponentContext) -> None:
        self._ctx = ctx
        if self._broker is None:  # the broker icon: the MQTT link's status, when MQTT is on
            self._broker = lambda: _link_up(ctx)
        if self.device is None:
            try:
                self.device = self._opener(self.config)
            except DisplayUnavailable as exc:
                log.warning("display disabled: %s", exc)
                return
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="display", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            left = self._ctx.stop_remaining() if self._ctx is not None else 5.0
            self._thread.join(timeout=max(0.1, min(5.0, left - 3.0)))  # the shared stop budget
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.config.refresh_seconds):
            self.refresh()

    # --- sink -----------------------------------------------------------------------------------
    def handle(self, event: Event) -> None:
        with self._lock:
            s = self._state
            if isinstance(event, EmotionEvent):
                pred = event.fused.prediction if event.fused is not None else event.scene.prediction
                modalities = tuple(event.fused.modalities) if event.fused is not None else (("face",) if pred else ())
                s = dataclasses.replace(
                    s,
                    label=pred.label if pred else None,
                    confidence=pred.confidence if pred else 0.0,
                    faces=event.scene.faces,
                    modalities=modalities,
                    reason=event.scene.quality_reason,
                )
            elif isinstance(event, ListeningEvent):
                s = dataclasses.replace(s, listening=event.active)
            elif isinstance(event, AudioEvent):  # the capture is over, whatever its outcome
                s = dataclasses.replace(s, listening=False)
            elif isinstance(event, PrivacyEvent):
                s = dataclasses.replace(s, privacy=event.enabled, label=None, confidence=0.0, faces=0, modalities=())
            elif isinstance(event, ErrorEvent) and event.component == "camera":
                s = dataclasses.replace(s, camera_ok=False, camera_error=event.message)
            self._state = s

    def close(self) -> None:
        self.stop()
        if self.device is not None:
            try:  # a dark screen says "not running" more honestly than a frozen emotion
                self.device.clear()
                self.device.hide()
            except Exception:  # the bus may already be gone at shutdown
                log.debug("display: clearing on close failed", exc_info=True)

    # --- drawing --------------------------------------------------------------------------------
    def state(self) -> DisplayState:
        """The events' state, with camera and broker status read live from the daemon."""
        with self._lock:
            s = self._state
        if self._ctx is not None and not s.privacy:
            h = self._ctx.health()
            max_age = self._ctx.config.health.max_frame_age
            if not h.camera_ok:
                s = dataclasses.replace(s, camera_ok=False, camera_error=h.camera_error or s.camera_error)
            elif h.frames and h.last_frame_age > max_age:
                s = dataclasses.replace(s, camera_ok=False, camera_error=f"no frame for {h.last_frame_age:.0f} s")
            else:
                s = dataclasses.replace(s, camera_ok=True, camera_error="")
        if self._broker is not None:
            try:
                s = dataclasses.replace(s, broker=self._broker())
            except Exception:
                s = dataclasses.replace(s, broker=False)
        return s

    def refresh(self) -> bool:
        """Draw the current state; returns whether a new picture was sent to the display."""
        if self.device is None:
            return False
        image = render(self.state())
        data = image.tobytes()
        if data == self._shown:
            return False
        try:
            self.device.display(image)
        except Exception as exc:  # a loose wire: keep trying quietly, say when it works again
            if not self._write_failed:
                log.warning("display write failed (%s); retrying quietly", exc)
                self._write_failed = True
            return False
        if self._write_failed:
            log.info("display works again")
            self._write_failed = False
        self._shown = data
        return True
