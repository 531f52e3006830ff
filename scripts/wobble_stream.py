#!/usr/bin/env python3
"""Feed emotiond's real MQTT sink a steady face whose probabilities wobble, for HA recorder-load runs.

One face in view, label ``happy`` throughout, its probability moving between 0.60 and 0.78 in steps
that cross the sink's 0.05 "significant change" threshold, five events a second: the case issue 13
measured (the label never changes, the probability attributes change on nearly every state). Used by
``scripts/ha_check.py --measure S --wobble``; runs against whichever checkout is on PYTHONPATH, so
the same stream can be measured on an older commit. Stops on SIGTERM.

    PYTHONPATH=. python scripts/wobble_stream.py --port 1883 --device-id hacheck --name "HA Check"
"""

from __future__ import annotations

import argparse
import signal
import threading

from emotiond.config import config_from_mapping
from emotiond.context import DaemonContext, Health
from emotiond.events import EmotionEvent, FaceEmotion, Prediction, SceneEmotion
from emotiond.fusion.labels import EMOTIONS
from emotiond.sinks.mqtt import MqttSink

STEPS = (0.60, 0.66, 0.72, 0.78, 0.72, 0.66)  # happy's probability, cycling


def prediction(p_happy: float, step: int) -> Prediction:
    rest = 1.0 - p_happy
    others = [e for e in EMOTIONS if e != "happy"]
    weights = [1.0 + ((i + step) % 3) for i in range(len(others))]  # the small ones shift too
    probs = {e: rest * w / sum(weights) for e, w in zip(others, weights, strict=True)}
    probs["happy"] = p_happy
    return Prediction(probs, "happy", p_happy)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--device-id", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--rate", type=float, default=5.0, help="events per second (default 5)")
    args = parser.parse_args()
    config = config_from_mapping({"device": {"id": args.device_id, "name": args.name},
                                  "mqtt": {"enabled": True, "host": "127.0.0.1", "port": args.port}})
    sink = MqttSink(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ctx = DaemonContext(lambda: config, sink.handle, Health, stop.set)
    sink.start(ctx)
    step = 0
    while not stop.wait(1.0 / args.rate):
        p = prediction(STEPS[step % len(STEPS)], step)
        sink.handle(EmotionEvent(step, (FaceEmotion(1, (200, 120, 120, 120), 0.95, p),), SceneEmotion(1, p)))
        step += 1
    sink.stop()
    sink.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
