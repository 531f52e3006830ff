#!/usr/bin/env python3
"""Check emotiond's Home Assistant discovery against a real mosquitto and a real Home Assistant.

Not run in CI (it installs Home Assistant, ~400 MB, a few minutes). See docs/home-assistant.md:

    python scripts/ha_check.py                     # installs HA 2024.3.3 into ~/.cache/emotiond-ha-check
    python scripts/ha_check.py --ha-venv /opt/ha   # an existing venv with `hass` in it

Runs with the Python that has emotiond installed (or PYTHONPATH at this checkout). Home Assistant
gets its own Python 3.11 venv: ``pip install homeassistant==<version> 'josepy<2' paho-mqtt==1.6.1``
(josepy 2 breaks HA 2024.3's acme import; paho-mqtt 1.6.1 is what its MQTT integration pins, and
``hass --skip-pip`` stops HA installing anything at run time). HA is configured from files only:
an MQTT config entry written into ``.storage``, ``mqtt_statestream`` to mirror every entity state
back onto the broker (so this script needs no HA login), and one automation that presses the
Listen button when a test topic is published. Checks, each printed as ok/FAIL:

1. every entity emotiond announces appears in HA (its state is mirrored by statestream), and
   HA's entity and device registries hold the unique_ids and one device;
2. the Listen button round trip: HA publishes ``cmd/capture_audio``, emotiond answers ok and
   publishes the audio event;
3. availability: the entities go ``unavailable`` when emotiond stops and come back when it restarts;
4. the Privacy switch round trip: HA turns it on (emotiond answers ok, the retained state says
   privacy and carries no label, HA's emotion sensor shows ``privacy``) and off again;
5. a 10-minute-old ``emotion_changed`` (as delivered from the queue after an outage) does not fire
   HA's event entity, a fresh one does;
6. the documented example automation (``not_from: [unavailable, unknown]``) does not fire when
   emotiond restarts; the old example without it is run beside it to show that it does;
7. the button device trigger (a device automation added once HA saved its device registry, then
   ``automation.reload``) ignores a 10-minute-old press and fires on a fresh one;
8. Home Assistant's log has no warning or error about MQTT or this device.

``--measure S`` first counts, for S seconds of emotiond running on the looped sample video, how
often HA writes each emotiond entity's state (statestream's ``last_updated``, one per state_changed
event, i.e. per recorder row); ``--emotiond-root DIR`` runs the daemon from another checkout (an
older commit) and ``--only-measure`` skips the checks, for a before/after comparison. ``--wobble``
measures ``scripts/wobble_stream.py`` (a steady face with wobbling probabilities through the real
MQTT sink) instead of the daemon on the video, and implies ``--only-measure``.

Exit status 0 when all pass, 1 otherwise, 2 when HA cannot be installed or started.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from emotiond.config import config_from_mapping  # noqa: E402
from emotiond.sinks.mqtt.discovery import Topics, discovery_messages  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

DEVICE_ID = "hacheck"
DEVICE_NAME = "HA Check"
BASE = f"emotiond/{DEVICE_ID}"
STATES = "hacheck_states"  # mqtt_statestream base topic
PRESS = "hacheck/press"  # the automation presses the Listen button when this is published
PRIVACY_ON, PRIVACY_OFF = "hacheck/privacy_on", "hacheck/privacy_off"  # automations flip the Privacy switch
FIRED_NEW, FIRED_OLD = "hacheck/fired_new", "hacheck/fired_old"  # the example automations' actions
RELOAD, PRESSED = "hacheck/reload", "hacheck/pressed"  # reload automations; the device trigger's action


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


# --- setup -------------------------------------------------------------------------------------

# Run by the HA venv's Python: the pinned requirements of the integrations this check loads (the
# ones HA always sets up, and MQTT's, with their dependencies and after_dependencies, which HA
# imports too), so `hass --skip-pip` never has to install anything at run time. Without them the
# frontend fails and HA starts in recovery mode, which skips automations and statestream.
REQUIREMENTS_OF_LOADED_INTEGRATIONS = """
import json, pathlib, homeassistant.bootstrap as b
root = pathlib.Path(b.__file__).parent / "components"
todo = [*b.DEFAULT_INTEGRATIONS, *b.CORE_INTEGRATIONS, "logger", "system_log", "mqtt", "mqtt_statestream",
        "automation", "button", "sensor", "event", "switch"]
seen, reqs = set(), set()
while todo:
    d = todo.pop()
    m = root / d / "manifest.json"
    if d in seen or not m.is_file():
        continue
    seen.add(d)
    data = json.loads(m.read_text())
    reqs.update(data.get("requirements", []))
    todo.extend(data.get("dependencies", []) + data.get("after_dependencies", []))  # both get imported
print("\\n".join(sorted(reqs)))
"""


def ensure_ha(venv: Path, version: str, python: str) -> Path:
    """A venv with ``hass`` and everything the check loads; installed once, then reused."""
    hass = venv / "bin" / "hass"
    ready = venv / ".emotiond-ha-check-ready"
    if hass.exists() and ready.exists():
        return hass
    print(f"installing Home Assistant {version} into {venv} (a few minutes, ~600 MB) ...", flush=True)
    if not hass.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    pip = [py, "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, f"homeassistant=={version}", "josepy<2"], check=True)
    reqs = subprocess.run([py, "-c", REQUIREMENTS_OF_LOADED_INTEGRATIONS], check=True, capture_output=True,
                          text=True).stdout.split()
    subprocess.run([*pip, *reqs, "josepy<2"], check=True)
    ready.write_text(" ".join(reqs) + "\n")
    return hass


def start_broker(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest none\npersistence false\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def accepting() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_for(accepting, 10, "mosquitto")
    return proc, port


def write_ha_config(config_dir: Path, port: int, listen_entity: str, switch_entity: str, event_entity: str,
                    extra_automations: str = "") -> None:
    (config_dir / ".storage").mkdir(parents=True, exist_ok=True)
    (config_dir / "configuration.yaml").write_text(f"""\
homeassistant:
  name: emotiond check
  latitude: 0
  longitude: 0
  elevation: 0
  unit_system: metric
  time_zone: UTC
logger:
  default: warning
mqtt_statestream:
  base_topic: {STATES}
  publish_timestamps: true
automation:
  - alias: press the emotiond Listen button
    trigger:
      - platform: mqtt
        topic: {PRESS}
    action:
      - service: button.press
        target:
          entity_id: {listen_entity}
  - alias: privacy on
    trigger: [{{platform: mqtt, topic: {PRIVACY_ON}}}]
    action: [{{service: switch.turn_on, target: {{entity_id: {switch_entity}}}}}]
  - alias: privacy off
    trigger: [{{platform: mqtt, topic: {PRIVACY_OFF}}}]
    action: [{{service: switch.turn_off, target: {{entity_id: {switch_entity}}}}}]
  # The documented example (README, docs/mqtt.md), with its action replaced by an MQTT publish.
  - alias: example automation as documented
    trigger:
      - platform: state
        entity_id: {event_entity}
        not_from: [unavailable, unknown]
    condition:
      - condition: template
        value_template: "{{{{ trigger.to_state.attributes.get('event_type') == 'surprise' }}}}"
    action:
      - service: mqtt.publish
        data: {{topic: {FIRED_NEW}, payload: "{{{{ trigger.from_state.state }}}}"}}
  # The example as it was before issue 13 (no not_from): fires when the entity comes back.
  - alias: old example automation
    trigger:
      - platform: state
        entity_id: {event_entity}
    condition:
      - condition: template
        value_template: "{{{{ trigger.to_state.attributes.get('event_type') == 'surprise' }}}}"
    action:
      - service: mqtt.publish
        data: {{topic: {FIRED_OLD}, payload: "{{{{ trigger.from_state.state }}}}"}}
  - alias: reload automations
    trigger: [{{platform: mqtt, topic: {RELOAD}}}]
    action: [{{service: automation.reload}}]
{extra_automations}""")
    entry = {
        "entry_id": "emotiondhacheckmqtt0000000000000", "version": 1, "minor_version": 1, "domain": "mqtt",
        "title": "127.0.0.1", "data": {"broker": "127.0.0.1", "port": port, "discovery": True},
        "options": {}, "pref_disable_new_entities": False, "pref_disable_polling": False, "source": "user",
        "unique_id": None, "disabled_by": None,
    }
    (config_dir / ".storage" / "core.config_entries").write_text(json.dumps(
        {"version": 1, "minor_version": 1, "key": "core.config_entries", "data": {"entries": [entry]}}))


def write_emotiond_config(path: Path, port: int, state_dir: bool = True) -> None:
    state = f'state_dir = "{path.parent / "state"}"\n' if state_dir else ""  # older checkouts lack the key
    path.write_text(
        f'[device]\nid = "{DEVICE_ID}"\nname = "{DEVICE_NAME}"\n{state}'
        f'[camera]\nsource = "{ROOT / "samples" / "demo.mp4"}"\nloop = true\n'
        '[output]\nstdout = false\n'
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\nreconnect_min = 0.2\nreconnect_max = 1.0\n'
        f'[audio]\nsource = "{ROOT / "samples" / "speech.wav"}"\n'
        f'[triggers]\nsignal = false\ncontrol_socket_path = "{path.parent / "control.sock"}"\n'
    )


class Recorder:
    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="emotiond-ha-check")
        self.client.on_connect = lambda c, *_a: c.subscribe([("#", 1)])
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()

    def _message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p in self.messages if t == topic]

    def last(self, topic: str) -> bytes | None:
        got = self.on(topic)
        return got[-1] if got else None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Check:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def __call__(self, name: str, fn: Callable[[], str]) -> None:
        try:
            detail = fn()
            print(f"ok    {name}: {detail}", flush=True)
        except (AssertionError, TimeoutError) as exc:
            self.failed.append(name)
            print(f"FAIL  {name}: {exc}", flush=True)


def start_emotiond(config: Path, log: Path, root: Path = ROOT) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOTIOND_")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with log.open("ab") as err:
        return subprocess.Popen([sys.executable, "-m", "emotiond", "-c", str(config), "run"], cwd=root, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)


def start_wobble(port: int, log: Path, root: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOTIOND_")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with log.open("ab") as err:
        return subprocess.Popen([sys.executable, str(ROOT / "scripts" / "wobble_stream.py"), "--port", str(port),
                                 "--device-id", DEVICE_ID, "--name", DEVICE_NAME], cwd=root, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)


def emotion_changed(to: str, timestamp: float, **extra: Any) -> bytes:
    """An ``emotion_changed`` event as emotiond publishes it (seq far above the daemon's own)."""
    return json.dumps({"type": "emotion_changed", "seq": 10**9 + int(timestamp) % 10**6, "timestamp": timestamp,
                       "scope": "scene", "source": "scene", "face_id": None, "from": "neutral", "to": to,
                       "confidence": 0.9, **extra}).encode()


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(rec: Recorder, seconds: float, timeout: float) -> None:
    """Print HA's state writes per emotiond entity per minute (statestream's last_updated: one per
    state_changed event, which is what HA's recorder stores)."""
    prefix = f"{STATES}/"

    def writes() -> dict[str, list[int]]:
        """entity -> [state writes, writes that changed only attributes (last_changed repeated)]."""
        with rec.lock:
            msgs = [(t, p) for t, p in rec.messages if t.startswith(prefix) and f"/{slug(DEVICE_NAME)}_" in t]
        counts: dict[str, list[int]] = {}
        changed: dict[str, bytes] = {}
        for t, p in msgs:
            entity = ".".join(t[len(prefix):].split("/")[:2])
            c = counts.setdefault(entity, [0, 0])
            if t.endswith("/last_updated"):
                c[0] += 1
            elif t.endswith("/last_changed"):
                c[1] += int(changed.get(entity) == p)
                changed[entity] = p
        return counts

    wait_for(lambda: writes(), timeout, "HA to start writing emotiond's entities")
    time.sleep(10)  # past the start-up burst (discovery, first states)
    start = writes()
    time.sleep(seconds)
    end = writes()
    scale = 60.0 / seconds
    rates = {e: [(n - start.get(e, [0, 0])[i]) * scale for i, n in enumerate(c)] for e, c in sorted(end.items())}
    print(f"HA state writes per minute over {seconds:.0f} s (all / attributes only):", flush=True)
    for entity, (total, attrs) in rates.items():
        print(f"  {entity:45s} {total:6.1f} {attrs:6.1f}", flush=True)
    print(f"  {'total':45s} {sum(r[0] for r in rates.values()):6.1f} {sum(r[1] for r in rates.values()):6.1f}",
          flush=True)


# --- the run -----------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emotiond-ha-check"
    parser.add_argument("--ha-version", default="2024.3.3")
    parser.add_argument("--ha-venv", type=Path, help=f"venv with hass in it (default {cache}/venv-<version>)")
    parser.add_argument("--python", default="python3.11", help="interpreter for a new HA venv (default python3.11)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, HA config)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for HA to start (default 180)")
    parser.add_argument("--measure", type=float, default=0.0, metavar="S",
                        help="first count HA state writes per emotiond entity for S seconds (default: skip)")
    parser.add_argument("--emotiond-root", type=Path, default=ROOT, help="checkout to run the daemon from")
    parser.add_argument("--only-measure", action="store_true", help="measure, then stop (no checks)")
    parser.add_argument("--wobble", action="store_true", help="measure scripts/wobble_stream.py, not the daemon")
    args = parser.parse_args()

    venv = args.ha_venv or cache / f"venv-{args.ha_version}"
    try:
        hass = ensure_ha(venv, args.ha_version, args.python)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"ha_check: cannot install Home Assistant {args.ha_version}: {exc}", file=sys.stderr)
        return 2

    config = config_from_mapping({"device": {"id": DEVICE_ID, "name": DEVICE_NAME}})
    announced = [(t.split("/")[1], p) for t, p in discovery_messages("homeassistant", config.device_id,
                                                                     DEVICE_NAME, Topics(BASE))]
    entities = {f"{component}.{slug(DEVICE_NAME)}_{slug(p['name'])}": p["unique_id"]
                for component, p in announced if component != "device_automation"}
    triggers = sum(1 for component, _ in announced if component == "device_automation")
    listen = next(e for e in entities if e.startswith("button."))
    switch = next(e for e in entities if e.startswith("switch."))
    event_entity = next(e for e in entities if e.startswith("event."))
    emotion_sensor = f"sensor.{slug(DEVICE_NAME)}_emotion"

    work = Path(tempfile.mkdtemp(prefix="emotiond-ha-check-"))
    ha_dir = work / "ha"
    broker = ha = daemon = None
    rec: Recorder | None = None
    check = Check()
    try:
        broker, port = start_broker(work)
        rec = Recorder(port)
        write_ha_config(ha_dir, port, listen, switch, event_entity)
        write_emotiond_config(work / "emotiond.toml", port, state_dir=args.emotiond_root == ROOT)
        if args.wobble:
            args.only_measure = True
            daemon = start_wobble(port, work / "emotiond.log", args.emotiond_root)
        else:
            daemon = start_emotiond(work / "emotiond.toml", work / "emotiond.log", args.emotiond_root)
        print(f"work directory {work}; starting Home Assistant {args.ha_version} ...", flush=True)
        with (work / "hass.out").open("wb") as out:
            ha = subprocess.Popen([str(hass), "-c", str(ha_dir), "--skip-pip"], stdout=out, stderr=subprocess.STDOUT)
        state_topic = {e: f"{STATES}/{e.replace('.', '/')}/state" for e in entities}

        def all_entities() -> str:
            def available() -> bool:  # each mirrored, and out of 'unavailable' once HA saw emotiond online
                return all(rec.last(t) not in (None, b"unavailable") for t in state_topic.values())

            try:
                wait_for(available, args.timeout, "every announced entity to be available in HA")
            except TimeoutError:
                missing = [e for e, t in state_topic.items() if rec.last(t) in (None, b"unavailable")]
                raise AssertionError(f"not (available) in HA: {', '.join(missing)} "
                                     f"(see {ha_dir}/home-assistant.log)") from None
            return ", ".join(f"{e}={rec.last(t).decode()!r}" for e, t in state_topic.items())  # type: ignore[union-attr]

        if args.measure > 0:
            measure(rec, args.measure, args.timeout)
            if args.only_measure:
                return 0
        check(f"{len(entities)} entities appear", all_entities)

        def listen_round_trip() -> str:
            seen = len(rec.on(f"{BASE}/cmd/capture_audio/result"))
            rec.client.publish(PRESS, "go", qos=1)
            wait_for(lambda: rec.on(f"{BASE}/cmd/capture_audio"), 30, "HA to publish cmd/capture_audio")
            wait_for(lambda: len(rec.on(f"{BASE}/cmd/capture_audio/result")) > seen, 30, "emotiond's answer")
            result = json.loads(rec.on(f"{BASE}/cmd/capture_audio/result")[-1])
            assert result.get("ok"), f"capture_audio answered {result}"
            audio = wait_for(lambda: [e for e in map(json.loads, rec.on(f"{BASE}/events"))
                                      if e.get("type") == "audio_captured"], 60, "the audio event")
            return f"HA sent {rec.on(f'{BASE}/cmd/capture_audio')[-1].decode()!r}, result ok, audio {audio[-1].get('status')}"

        check("Listen button round trip", listen_round_trip)

        def privacy_switch() -> str:
            mirror = state_topic[switch]
            emotion = f"{STATES}/{emotion_sensor.replace('.', '/')}/state"
            seen = len(rec.on(f"{BASE}/cmd/privacy/result"))
            rec.client.publish(PRIVACY_ON, "go", qos=1)
            wait_for(lambda: len(rec.on(f"{BASE}/cmd/privacy/result")) > seen, 30, "emotiond's answer to privacy on")
            answer = json.loads(rec.on(f"{BASE}/cmd/privacy/result")[-1])
            assert answer.get("ok") and answer.get("privacy") is True, f"privacy on answered {answer}"
            wait_for(lambda: rec.last(mirror) == b"on", 30, f"{switch} to be on in HA")
            wait_for(lambda: rec.last(emotion) == b"privacy", 30, f"{emotion_sensor} to show privacy")
            retained = json.loads(rec.last(f"{BASE}/state") or b"{}")
            assert retained.get("privacy") is True and "label" not in retained and "faces" not in retained, \
                f"retained state in privacy mode: {retained}"
            sent_on = rec.on(f"{BASE}/cmd/privacy")[-1].decode()
            return (f"HA sent {sent_on!r}, emotiond answered ok, {switch} on, {emotion_sensor} 'privacy', "
                    f"retained state without label/faces")

        # Privacy stays on through the next checks: the daemon then analyses nothing, so every firing
        # of the event entity comes from this script, and it must still be on after the restart.
        check("Privacy switch on", privacy_switch)

        event_mirror = state_topic[event_entity]

        def stale_event() -> str:
            before = rec.last(event_mirror)
            old = time.time() - 600
            rec.client.publish(f"{BASE}/events", emotion_changed("angry", old, age=600.0), qos=1)
            time.sleep(5)  # a negative check: give HA time to (wrongly) fire
            assert rec.last(event_mirror) == before, f"{event_entity} fired on a 10-minute-old event"
            rec.client.publish(f"{BASE}/events", emotion_changed("neutral", time.time()), qos=1)
            wait_for(lambda: rec.last(event_mirror) != before, 30, f"{event_entity} to fire on a fresh event")
            first = rec.last(event_mirror)  # from unknown: the example's not_from skips this one
            fired = len(rec.on(FIRED_NEW))
            time.sleep(0.01)  # the next event gets a later timestamp as its state
            rec.client.publish(f"{BASE}/events", emotion_changed("surprise", time.time()), qos=1)
            wait_for(lambda: rec.last(event_mirror) != first, 30, f"{event_entity} to fire on a second fresh event")
            wait_for(lambda: len(rec.on(FIRED_NEW)) > fired, 30, "the example automation on the fresh event")
            return f"{event_entity} unchanged by the 600 s old event, fired by a fresh one (and the example automation)"

        check("stale event ignored", stale_event)

        def device_trigger() -> str:
            registry = ha_dir / ".storage" / "core.device_registry"

            def our_device() -> str | None:  # HA writes its registry a few seconds after a change
                try:
                    devices = json.loads(registry.read_text())["data"]["devices"]
                except (OSError, ValueError, KeyError):
                    return None
                return next((d["id"] for d in devices if ["mqtt", f"emotiond_{DEVICE_ID}"] in d["identifiers"]), None)

            device_id = wait_for(our_device, 60, "HA to save its device registry")
            write_ha_config(ha_dir, port, listen, switch, event_entity, f"""\
  - alias: hacheck device button
    trigger:
      - {{platform: device, domain: mqtt, device_id: {device_id}, type: button_short_press, subtype: button_1}}
    action: [{{service: mqtt.publish, data: {{topic: {PRESSED}, payload: pressed}}}}]
""")
            rec.client.publish(RELOAD, "go", qos=1)
            wait_for(lambda: rec.last(f"{STATES}/automation/hacheck_device_button/state") == b"on", 30,
                     "the device automation to load")
            rec.client.publish(f"{BASE}/button", json.dumps({"action": "press", "timestamp": time.time() - 600,
                                                             "age": 600.0}), qos=1)
            time.sleep(5)  # a negative check: give HA time to (wrongly) fire
            assert not rec.on(PRESSED), "the device trigger fired on a 10-minute-old press"
            rec.client.publish(f"{BASE}/button", json.dumps({"action": "press", "timestamp": time.time()}), qos=1)
            wait_for(lambda: rec.on(PRESSED), 30, "the device trigger to fire on a fresh press")
            return "button_short_press device trigger: not fired by a 600 s old press, fired by a fresh one"

        check("button device trigger ignores a stale press", device_trigger)

        def availability() -> str:
            nonlocal daemon
            probe = state_topic[next(e for e in entities if e.startswith("sensor."))]
            stop(daemon)
            wait_for(lambda: rec.last(probe) == b"unavailable", 30, f"{probe} to become unavailable")
            daemon = start_emotiond(work / "emotiond.toml", work / "emotiond.log", args.emotiond_root)
            wait_for(lambda: rec.last(probe) not in (None, b"unavailable"), 60, f"{probe} to come back")
            return f"{probe}: unavailable after stop, {rec.last(probe).decode()!r} after restart"  # type: ignore[union-attr]

        fired_new, fired_old = len(rec.on(FIRED_NEW)), len(rec.on(FIRED_OLD))
        check("availability follows the daemon", availability)

        def restart_does_not_fire() -> str:
            time.sleep(3)  # after the entities came back
            new, old = rec.on(FIRED_NEW)[fired_new:], rec.on(FIRED_OLD)[fired_old:]
            assert not new, f"the documented automation fired on the restart with {new}"
            return (f"documented example (not_from unavailable/unknown) fired 0 times on the restart; "
                    f"the old example without not_from fired {len(old)} time(s) (from {b', '.join(old).decode()!r})")

        check("example automation not fired by a restart", restart_does_not_fire)

        def privacy_restored_and_off() -> str:
            mirror = state_topic[switch]
            assert rec.last(mirror) == b"on", f"{switch} is {rec.last(mirror)!r} after the restart, not on"
            rec.client.publish(PRIVACY_OFF, "go", qos=1)
            wait_for(lambda: rec.last(mirror) == b"off", 30, f"{switch} to be off in HA")
            emotion = f"{STATES}/{emotion_sensor.replace('.', '/')}/state"
            wait_for(lambda: rec.last(emotion) not in (b"privacy", b"unavailable", None), 30,
                     f"{emotion_sensor} to leave privacy")
            return f"{switch} still on after the restart (restored from the state dir); off from HA again"

        check("Privacy restored after restart, switch off", privacy_restored_and_off)
        stop(daemon)
        daemon = None
        stop(ha)  # flushes HA's registries to .storage
        ha = None

        def registries() -> str:
            ent = json.loads((ha_dir / ".storage" / "core.entity_registry").read_text())["data"]["entities"]
            ids = {e["unique_id"] for e in ent if e["platform"] == "mqtt"}
            missing = set(entities.values()) - ids
            assert not missing, f"unique_ids not registered: {sorted(missing)}"
            dev = json.loads((ha_dir / ".storage" / "core.device_registry").read_text())["data"]["devices"]
            ours = [d for d in dev if ["mqtt", f"emotiond_{DEVICE_ID}"] in d["identifiers"]]
            assert len(ours) == 1, f"expected one device emotiond_{DEVICE_ID}, found {len(ours)}"
            return (f"{len(ids)} mqtt unique_ids, device {ours[0]['name']!r} ({ours[0]['model']}); "
                    f"{triggers} device triggers announced (the short press checked above)")

        check("registries", registries)

        def ha_log() -> str:
            log = (ha_dir / "home-assistant.log").read_text(errors="replace")
            bad = [line for line in log.splitlines() if re.search(r"\b(WARNING|ERROR)\b", line)
                   and re.search(r"mqtt|emotiond|ha_check|hacheck", line, re.IGNORECASE)]
            assert not bad, "HA logged:\n      " + "\n      ".join(bad[:20])
            return "no warning or error about MQTT or the device"

        check("Home Assistant log", ha_log)
    except (OSError, TimeoutError) as exc:
        print(f"ha_check: {exc}", file=sys.stderr)
        return 2
    finally:
        stop(daemon)
        stop(ha)
        if rec is not None:
            rec.close()
        stop(broker)
        if args.keep or check.failed:
            print(f"logs and configs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("all checks passed" if not check.failed else f"FAILED: {', '.join(check.failed)}")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
