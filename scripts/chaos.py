#!/usr/bin/env python3
"""The chaos suite: a real mosquitto and the real daemon on a looped clip, faults injected, one line
of figures per scenario. Local only (127.0.0.1), bounded in time (a few minutes).

What is counted, and how:
- *queued*: the daemon runs with ``--log-level debug`` and logs ``seq now N`` each time it numbers
  event messages (stderr, written at once, so it survives a SIGKILL): the oracle of what it produced.
- *received*: a subscriber with a persistent session on the ``events`` topic (the broker keeps its
  queue across broker kills with ``autosave_on_changes``).
- *gaps*: seqs queued but never received; *dups*: a seq received more than once; *reused*: a seq
  received as two different events (``age``, the hand-over delay, aside), or numbered by a run at
  or below one an earlier run used;
  *order*: first arrivals in increasing seq order.
- *lost*: gaps among the queued ones; for a daemon SIGKILL also how long before the kill the newest
  lost one was numbered (the documented window is 200 ms plus the time to write it).

Usage: scripts/chaos.py [--only NAME] [--skip-bad-inputs]   (scripts/chaos.sh runs it)
Exit status 1 if a scenario misses its target (see docs/reliability.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from emotiond.sinks.mqtt.journal import Journal  # noqa: E402
from emotiond.sinks.mqtt.translate import Outgoing  # noqa: E402

from mosquitto import Broker, Recorder, event_identity, wait_until  # noqa: E402

VIDEO = ROOT / "samples" / "demo.mp4"
WAV = ROOT / "samples" / "speech.wav"
DEV = "chaos"
BASE = f"emotiond/{DEV}"
STAMP_RE = re.compile(rb"^\S+ (\d\d):(\d\d):(\d\d),(\d{3}) ")
FAILED: list[str] = []


def line(name: str, text: str, ok: bool) -> None:
    print(f"{name:<28} {text}{'' if ok else '   <-- FAIL'}", flush=True)
    if not ok:
        FAILED.append(name)


def write_config(path: Path, broker: Broker, spool: Path, source: str | None = None, loop: bool = True,
                 extra: str = "") -> Path:
    path.write_text(
        f'[device]\nid = "{DEV}"\nname = "Chaos"\n'
        f'[camera]\nsource = "{source or VIDEO}"\nloop = {"true" if loop else "false"}\nreconnect_seconds = 1.0\n'
        '[output]\nstdout = false\n'
        f'[audio]\nenabled = true\nsource = "{WAV}"\n'
        '[triggers]\nsignal = false\ncontrol_socket = false\n'
        f'[mqtt]\nenabled = true\nhost = "{broker.host}"\nport = {broker.port}\nmin_interval = 0.0\n'
        'min_dwell = 0.0\nheartbeat = 5.0\nreconnect_min = 0.2\nreconnect_max = 1.0\nstop_timeout = 3.0\n'
        f'discovery = false\nspool_file = "{spool}"\n{extra}'
    )
    return path


class Daemon:
    """``python -m emotiond run`` with debug logs to a file (the seq oracle)."""

    def __init__(self, config: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMOTIOND_")}
        env["PYTHONUNBUFFERED"] = "1"
        # its own state (privacy mode, which the suite toggles): never this machine's real one
        env.pop("STATE_DIRECTORY", None)
        env["XDG_STATE_HOME"] = str(config.parent / "state")
        self.log_path = log
        self._log = log.open("ab")
        self.start_offset = log.stat().st_size
        self.proc = subprocess.Popen([sys.executable, "-m", "emotiond", "-c", str(config), "--log-level", "debug",
                                      "run"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=self._log)

    def text(self) -> bytes:
        return self.log_path.read_bytes()[self.start_offset:]

    def seqs(self) -> list[tuple[float, int]]:
        """(log time in s of day, seq now) of each numbering, in order."""
        out = []
        for raw in self.text().splitlines():
            if b"seq now" not in raw:
                continue
            m = STAMP_RE.match(raw)
            n = re.search(rb"seq now (\d+)", raw)
            if m and n:
                h, mi, s, ms = (int(x) for x in m.groups())
                out.append((h * 3600 + mi * 60 + s + ms / 1000, int(n.group(1))))
        return out

    def wait_log(self, needle: bytes, timeout: float = 60.0) -> None:
        wait_until(lambda: needle in self.text() or self.proc.poll() is not None, timeout, what=needle.decode())
        if self.proc.poll() is not None and needle not in self.text():
            raise RuntimeError(f"daemon exited {self.proc.returncode} before {needle!r}: {self.text()[-2000:]!r}")

    def ready(self, timeout: float = 90.0) -> Daemon:
        self.wait_log(b"ready:", timeout)
        return self

    def rss_kib(self) -> int:
        for row in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1])
        return 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()

    def term(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGTERM; (exit status, seconds until it exited)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        took = time.monotonic() - t0
        self._log.close()
        return code, took

    def tracebacks(self) -> int:
        return self.text().count(b"Traceback")


def produced(daemons: list[Daemon]) -> list[int]:
    """Every seq the runs numbered (the oracle); contiguous within a run."""
    out: list[int] = []
    for d in daemons:
        last: int | None = None
        for _, s in d.seqs():
            start = (last + 1) if last is not None else s
            out += range(start, s + 1)
            last = s
    return out


def first_seq(d: Daemon) -> int | None:
    """The first seq a run numbered (its first 'seq now' minus the messages of that batch, + 1)."""
    for raw in d.text().splitlines():
        m = re.search(rb"queued (\d+) message\(s\), seq now (\d+)", raw)
        if m:
            return int(m.group(2)) - int(m.group(1)) + 1
    return None


class Load:
    """Real events at a steady rate: ``privacy`` toggled over MQTT (each toggle is a numbered ``privacy``
    event; the looped clip alone gives about one event a second). Needs the broker; pauses while it is
    down (paho queues nothing for a client that is not connected)."""

    def __init__(self, broker: Broker, rate: float = 20.0) -> None:
        self.rec = Recorder(broker, [f"{BASE}/nothing"], client_id=f"chaos-load-{id(self)}")
        self.rate = rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        on = True
        while not self._stop.wait(1.0 / self.rate):
            if self.rec.client.is_connected():
                self.rec.client.publish(f"{BASE}/cmd/privacy", b'{"enabled": %s}' % (b"true" if on else b"false"), qos=0)
                on = not on

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.rec.client.publish(f"{BASE}/cmd/privacy", b'{"enabled": false}', qos=1)
        self.rec.close()


@dataclass
class Events:
    rec: Recorder
    bodies: dict[int, set[str]] = field(default_factory=dict)

    def seqs(self) -> list[int]:
        out = []
        for p in self.rec.on(f"{BASE}/events"):
            body = json.loads(p)
            out.append(int(body["seq"]))
        return out

    def reused_bodies(self) -> dict[int, set[bytes]]:
        """Each seq that arrived as two different events, with those contents. A copy sent again after a
        crash (at least once) is the same event: only ``age``, the hand-over delay, may differ."""
        bodies: dict[int, dict[str, bytes]] = {}
        for p in self.rec.on(f"{BASE}/events"):
            bodies.setdefault(int(json.loads(p)["seq"]), {})[event_identity(p)] = p
        return {k: set(v.values()) for k, v in bodies.items() if len(v) > 1}

    def resent(self) -> int:
        """Seqs that arrived more than once (the same event again)."""
        got = self.seqs()
        return len(got) - len(set(got))

    def reused(self) -> int:
        return len(self.reused_bodies())


def stats(events: Events, queued: list[int]) -> tuple[int, int, int, int, bool]:
    got = events.seqs()
    uniq = set(got)
    gaps = len(set(queued) - uniq)
    dups = len(got) - len(uniq)
    firsts: list[int] = []
    seen: set[int] = set()
    for s in got:
        if s not in seen:
            seen.add(s)
            firsts.append(s)
    return len(set(queued)), len(uniq), gaps, dups, firsts == sorted(firsts)


def settle(events: Events, queued: Callable[[], list[int]], timeout: float = 20.0) -> None:
    """Wait until every queued seq arrived, or ``timeout``."""
    try:
        wait_until(lambda: set(queued()) <= set(events.seqs()), timeout, interval=0.2, what="delivery")
    except AssertionError:
        pass


# --- scenarios ------------------------------------------------------------------------------------
def broker_kills(tmp: Path, rounds: int = 5) -> None:
    b = Broker(tmp / "b", persistence=True).start()
    rec = Recorder(b, [f"{BASE}/events"], client_id="chaos-sub", clean=False)
    ev = Events(rec)
    d = Daemon(write_config(tmp / "c.toml", b, tmp / "spool.jsonl"), tmp / "d.log").ready()
    load = Load(b)
    for _ in range(rounds):
        time.sleep(2.0)
        b.kill()
        time.sleep(1.0)
        b.start()
    time.sleep(1.5)
    load.close()
    settle(ev, lambda: produced([d]))
    code, _ = d.term()
    settle(ev, lambda: produced([d]), 10)
    sent, got, gaps, dups, order = stats(ev, produced([d]))
    line(f"broker SIGKILL x{rounds}", f"sent {sent} received {got} gaps {gaps} dups {dups} "
         f"in order {'yes' if order else 'NO'} reused {ev.reused()} exit {code}",
         gaps == 0 and order and ev.reused() == 0 and code == 0)
    rec.close()
    b.stop()


def daemon_kill(tmp: Path, broker_up: bool) -> None:
    b = Broker(tmp / "b", persistence=True).start()
    spool = tmp / "spool.jsonl"
    cfg = write_config(tmp / "c.toml", b, spool)
    rec = Recorder(b, [f"{BASE}/events"], client_id="chaos-sub", clean=False)
    first = Daemon(cfg, tmp / "d1.log").ready()
    wait_until(lambda: b"connected to" in first.text(), 20, what="connected")
    load = Load(b)
    if not broker_up:  # the broker dies; the clip's own events (about 1/s) must wait in the journal
        time.sleep(1.0)
        load.close()
        time.sleep(0.5)
        rec.close()
        b.kill()
    time.sleep(3.0)
    first.kill()
    kill_at = _now_of_day()
    if broker_up:
        load.close()
    else:
        b.start()
        old = rec.messages
        rec = Recorder(b, [f"{BASE}/events"], client_id="chaos-sub", clean=False)
        with rec._lock:
            rec.messages[:0] = old  # what arrived before the broker died counts too
    ev = Events(rec)
    second = Daemon(cfg, tmp / "d2.log").ready()
    time.sleep(2.0)
    runs = [first, second]
    settle(ev, lambda: produced(runs))
    code, _ = second.term()
    q1 = produced([first])
    got = set(ev.seqs())
    lost = sorted(set(q1) - got)
    s2 = first_seq(second)
    reused = ev.reused() + (1 if s2 is not None and q1 and s2 <= max(q1) else 0)
    ages = [kill_at - t for t, s in first.seqs() if s in lost]
    age = f", newest lost numbered {max(ages) * 1000:.0f} ms before the kill" if ages else ""
    label = "daemon SIGKILL, broker " + ("up" if broker_up else "down")
    twice = ev.reused_bodies()
    seen = ""
    if twice:  # say what came twice, so a failure can be read without re-running it
        seq, bodies = sorted(twice.items())[0]
        seen = f" (seq {seq} as: " + " | ".join(b.decode(errors="replace")[:200] for b in sorted(bodies)) + ")"
    line(label, f"run 1 numbered {len(q1)}, lost {len(lost)}{age}; run 2 starts at seq {s2} "
         f"(run 1 max {max(q1) if q1 else None}); reused seq {reused}{seen}; sent again {ev.resent()}; exit {code}",
         reused == 0 and code == 0 and (not ages or max(ages) <= 0.5))
    rec.close()
    b.stop()


def _now_of_day() -> float:
    t = time.localtime()
    return t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec + (time.time() % 1)


def _hostile_payloads(rng: random.Random) -> list[tuple[str, bytes]]:
    names = ["privacy", "reload", "snapshot", "capture_audio", "nope", "x" * 64, "a-b_c"]
    fixed: list[bytes] = [
        b"[" * 5000 + b"]" * 5000, b'{"a":' * 100 + b"1" + b"}" * 100, b"{" * 20000,
        b'{"duration": ' + b"9" * 400 + b"}", b'{"duration": 1e999}', b'{"duration": NaN}', b'{"id": NaN}',
        b'{"id": Infinity}', b'{"id": -Infinity}', b'{"id": ' + b"1" * 39 + b"}", b'{"id": {"a": [1, 2]}}',
        b"\xff\xfe\x00garbage", b"", b"   ", b"null", b"42", b'"str"', b"[]", b'{"enabled": "yes"}',
        b'{"enabled": 1}', b'{"quality": 1000}', b'{"quality": 1.5}', b'{"duration": -1}', b'{"duration": "3"}',
        b'{"unknown": true}', b'{"id": "' + b"i" * 1000 + b'"}', b"x" * 5000, b'{"a": "\\ud800"}',
        b'{"a": 1, "a": 2}', b'{"' + b"k" * 3000 + b'": 1}',
    ]
    out = [(names[i % len(names)], p) for i, p in enumerate(fixed * 3)]
    while len(out) < 330:
        n = rng.randrange(1, 200)
        out.append((rng.choice(names), bytes(rng.randrange(256) for _ in range(n))))
    return out


def _strict(p: bytes) -> bool:
    def bad(_x: str) -> Any:
        raise ValueError("non-finite")
    try:
        json.loads(p, parse_constant=bad)
        return True
    except ValueError:
        return False


def hostile_commands(tmp: Path) -> None:
    b = Broker(tmp / "b").start()
    rec = Recorder(b, [f"{BASE}/cmd/#"])
    d = Daemon(write_config(tmp / "c.toml", b, tmp / "spool.jsonl"), tmp / "d.log").ready()
    wait_until(lambda: b"subscribed" in d.text() or b"connected to" in d.text(), 20, what="connected")
    time.sleep(0.5)
    before = d.rss_kib()
    cases = _hostile_payloads(random.Random(12))
    results = lambda: [p for t, p, _ in rec.messages if t.endswith("/result")]  # noqa: E731
    rss = [before]
    for _round in range(2):  # the same set twice: growth in round 2 would be a leak, round 1 is warm-up
        want = len(results()) + len(cases)
        for i, (name, payload) in enumerate(cases):
            rec.client.publish(f"{BASE}/cmd/{name}", payload, qos=1)
            if i % 5 == 4:
                time.sleep(0.1)  # ~50/s over 7 topics: under the per-topic answer rate (10/s)
        try:
            wait_until(lambda want=want: len(results()) >= want, 30, interval=0.2, what="answers")
        except AssertionError:
            pass
        time.sleep(1.0)
        rss.append(d.rss_kib())
    cases = cases * 2
    answers = results()
    valid = sum(1 for p in answers if _strict(p))
    alive = d.proc.poll() is None
    code, _ = d.term()
    tb = d.tracebacks()
    line("hostile commands", f"sent {len(cases)} answered {len(answers)} valid JSON {valid} tracebacks {tb} "
         f"RSS {' -> '.join(f'{r / 1024:.0f}' for r in rss)} MiB (start, round 1, round 2) "
         f"alive {'yes' if alive else 'NO'} exit {code}",
         len(answers) >= len(cases) and valid == len(answers) and tb == 0 and alive and code == 0)
    rec.close()
    b.stop()


def command_burst(tmp: Path, n: int = 3000) -> None:
    b = Broker(tmp / "b").start()
    rec = Recorder(b, [f"{BASE}/events", f"{BASE}/cmd/#"])
    ev = Events(rec)
    d = Daemon(write_config(tmp / "c.toml", b, tmp / "spool.jsonl"), tmp / "d.log").ready()
    wait_until(lambda: b"connected to" in d.text(), 20, what="connected")
    load = Load(b)
    time.sleep(1.0)
    t0 = time.monotonic()
    for i in range(n):
        info = rec.client.publish(f"{BASE}/cmd/junk{i % 3}", b"not json", qos=1)
    info.wait_for_publish(30)
    burst = time.monotonic() - t0
    time.sleep(2.0)
    load.close()
    settle(ev, lambda: produced([d]))
    code, _ = d.term()
    queued = produced([d])
    lost = len(set(queued) - set(ev.seqs()))
    answers = len([1 for t, _, _ in rec.messages if t.endswith("/result")])
    drop_lines = d.text().count(b"command answers over")
    line("3000-command burst", f"{n} junk commands in {burst:.2f} s: real events numbered {len(set(queued))} "
         f"lost {lost}; answers {answers} (the rest dropped by the rate limit, {drop_lines} log "
         f"line(s)); exit {code}",
         lost == 0 and code == 0)
    rec.close()
    b.stop()


def camera_vanishes(tmp: Path) -> None:
    """Stands in for a USB camera unplugged mid-stream (no camera here): a ``file://`` stream (a camera-
    kind source, not a file) of a copy of the clip that plays to its end and is then deleted."""
    b = Broker(tmp / "b").start()
    rec = Recorder(b, [f"{BASE}/events"])
    clip = tmp / "cam.mp4"
    shutil.copy(VIDEO, clip)
    d = Daemon(write_config(tmp / "c.toml", b, tmp / "spool.jsonl", source=f"file://{clip}", loop=False),
               tmp / "d.log").ready()
    clip.unlink()
    try:
        wait_until(lambda: any(e.get("type") == "error" and e.get("component") == "camera"
                               for e in rec.json_on(f"{BASE}/events")), 20, what="camera error event")
        event = True
    except AssertionError:
        event = False
    time.sleep(2.5)
    running = d.proc.poll() is None
    code, _ = d.term() if running else (d.proc.returncode, 0.0)
    line("camera stream vanishes", f"error event {'yes' if event else 'NO'}, kept running {'yes' if running else 'NO'}, "
         f"SIGTERM -> {code} (simulated: file:// stream deleted)", event and running and code == 0)
    rec.close()
    b.stop()


def sigterm_latency(tmp: Path) -> None:
    # broker up
    b = Broker(tmp / "b").start()
    d = Daemon(write_config(tmp / "c.toml", b, tmp / "s1.jsonl"), tmp / "d1.log").ready()
    time.sleep(1.0)
    code, took = d.term()
    line("SIGTERM, broker up", f"exit {code} in {took:.2f} s", code == 0 and took < 9.0)
    # broker down, 500 queued (a journal left by an earlier run, plus what this one numbers)
    spool = tmp / "s2.jsonl"
    j = Journal(spool, BASE)
    j.open()
    for i in range(500):
        j.append(Outgoing(f"{BASE}/events", json.dumps({"type": "error", "seq": i + 1, "timestamp": 0,
                                                        "component": "chaos", "message": str(i)})))
    j.close(used_seq=500, dropped=0)
    b.stop()
    d = Daemon(write_config(tmp / "c2.toml", b, spool), tmp / "d2.log").ready()
    time.sleep(1.0)
    code, took = d.term()
    kept = sum(1 for raw in spool.read_bytes().splitlines() if b'"put"' in raw)
    line("SIGTERM, broker down", f"500+ queued: exit {code} in {took:.2f} s, {kept} kept in the journal",
         code == 0 and took < 9.0 and kept >= 500)
    # broker frozen (SIGSTOP): TCP up, no answers
    b.start()
    d = Daemon(write_config(tmp / "c3.toml", b, tmp / "s3.jsonl"), tmp / "d3.log").ready()
    wait_until(lambda: b"connected to" in d.text(), 20, what="connected")
    time.sleep(0.5)
    assert b.proc is not None
    b.proc.send_signal(signal.SIGSTOP)
    time.sleep(1.0)
    try:
        code, took = d.term()
    finally:
        b.proc.send_signal(signal.SIGCONT)
    line("SIGTERM, broker frozen", f"exit {code} in {took:.2f} s", code == 0 and took < 9.0)
    b.stop()


def bad_inputs(_tmp: Path) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bad_inputs.py")], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    rows = [r for r in out.stdout.splitlines() if r.startswith("| ") and not r.startswith("| case") and "---" not in r]
    wrong = [r for r in rows if "FAIL" in r or "WRONG" in r.upper()]
    tb = sum(1 for r in rows if r.split("|")[4].strip() == "yes") if rows else 0
    line("bad inputs + camera faults", f"{len(rows)} cases, {len(wrong) if out.returncode == 0 else 'some'} wrong, "
         f"{tb} tracebacks (scripts/bad_inputs.py exit {out.returncode})", out.returncode == 0 and tb == 0)


SCENARIOS: dict[str, Callable[[Path], None]] = {
    "broker-kills": broker_kills,
    "daemon-kill-up": lambda t: daemon_kill(t, True),
    "daemon-kill-down": lambda t: daemon_kill(t, False),
    "hostile": hostile_commands,
    "burst": command_burst,
    "camera": camera_vanishes,
    "sigterm": sigterm_latency,
    "bad-inputs": bad_inputs,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="run only these (repeatable)")
    ap.add_argument("--skip-bad-inputs", action="store_true")
    args = ap.parse_args(argv)
    if not any(Path(d, "mosquitto").is_file() for d in ("/usr/sbin", "/usr/bin")) and not shutil.which("mosquitto"):
        print("chaos: mosquitto is not installed: apt-get install -y mosquitto mosquitto-clients", file=sys.stderr)
        return 2
    names = args.only or [n for n in SCENARIOS if not (args.skip_bad_inputs and n == "bad-inputs")]
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="emotiond-chaos-") as tmp:
        for name in names:
            work = Path(tmp) / name
            work.mkdir()
            try:
                SCENARIOS[name](work)
            except Exception as exc:  # a scenario that cannot run is a failure with its reason, not a traceback
                line(name, f"could not run: {type(exc).__name__}: {str(exc)[:300]}", False)
            if os.environ.get("CHAOS_KEEP"):
                shutil.copytree(work, Path(os.environ["CHAOS_KEEP"]) / name, dirs_exist_ok=True)
    print(f"chaos: {len(names)} scenario(s) in {time.monotonic() - t0:.0f} s, {len(FAILED)} failed"
          f"{': ' + ', '.join(FAILED) if FAILED else ''}", flush=True)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
