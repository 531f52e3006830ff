"""A model's sidecar JSON manifest: file, labels, input range, pre-processing, thresholds."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotiond.backends import ModelError


@dataclass(frozen=True)
class Manifest:
    """The sidecar JSON: everything a caller needs to feed the model and read its output."""

    path: Path
    name: str
    task: str
    file: str
    labels: tuple[str, ...] = ()
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def model_path(self) -> Path:
        return self.path.parent / self.file

    @property
    def input_range(self) -> tuple[float, float]:
        lo, hi = self.input.get("range", (0.0, 1.0))
        return float(lo), float(hi)

    @property
    def preprocessing_steps(self) -> tuple[str, ...]:
        """The ordered pixel steps the model wants (``preprocessing.steps``); the consumer checks the names."""
        steps = self.preprocessing.get("steps", [])
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            raise ModelError(f"{self.path}: preprocessing.steps must be a list of step names")
        return tuple(steps)

    @property
    def validated(self) -> bool:
        """True only when the ``validation`` block says ``validated`` (its fields are checked at load)."""
        return bool(self.raw.get("validation", {}).get("status") == "validated")

    @classmethod
    def load(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{path}: model manifest not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise ModelError(f"{path}: manifest is not valid JSON ({str(exc)[:120] or type(exc).__name__})") from None
        except OSError as exc:
            raise ModelError(f"{path}: cannot read the manifest ({exc.strerror or exc})") from None
        validate_manifest(data, path)
        check_validation(path, data.get("validation"))
        return cls(
            path=path,
            name=data["name"],
            task=data["task"],
            file=data["file"],
            labels=tuple(data.get("labels", ())),
            input=dict(data.get("input", {})),
            output=dict(data.get("output", {})),
            preprocessing=dict(data.get("preprocessing", {})),
            thresholds=dict(data.get("thresholds", {})),
            raw=data,
        )


def is_json_only_model(path: Path) -> bool:
    """A models-dir JSON that is a whole model by itself (``kind`` and no ``file``), not a TFLite manifest."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False  # unreadable: Manifest.load reports it
    return isinstance(data, dict) and "kind" in data and "file" not in data


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_shape(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in v)


def validate_manifest(data: Any, path: Path) -> None:
    """Check a manifest's header like config: every mistake is one ModelError naming the file and field.

    Checked here, before an interpreter exists, so ``emotiond models`` and ``run`` refuse the same files;
    the label count against the real output size is checked in TFLiteModel.
    """
    def bad(key: str, expected: str, value: Any) -> ModelError:
        return ModelError(f"{path}: field '{key}': expected {expected}, got {json.dumps(value)[:80]}")

    if not isinstance(data, dict):
        raise ModelError(f"{path}: manifest must be a JSON object, got {type(data).__name__}")
    for key in ("name", "task", "file"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            if key not in data:
                raise ModelError(f"{path}: manifest needs a string '{key}'")
            raise bad(key, "a non-empty string", data[key])
    if "labels" in data:
        labels = data["labels"]
        if not isinstance(labels, list) or not all(isinstance(x, str) and x.strip() for x in labels):
            raise bad("labels", "a list of non-empty strings", labels)
        if len(set(labels)) != len(labels):
            raise bad("labels", "distinct labels", labels)
    for key in ("input", "output", "preprocessing", "thresholds"):
        if key in data and not isinstance(data[key], dict):
            raise bad(key, "an object", data[key])
    for key in ("input", "output"):
        shape = data.get(key, {}).get("shape")
        if shape is not None and not _is_shape(shape):
            raise bad(f"{key}.shape", "a list of positive integers", shape)
    if "range" in data.get("input", {}):
        rng = data["input"]["range"]
        if not (isinstance(rng, list) and len(rng) == 2 and all(map(_is_number, rng)) and rng[0] < rng[1]):
            raise bad("input.range", "[low, high] with finite low < high", rng)
    for key, value in data.get("thresholds", {}).items():
        if isinstance(value, bool) or (isinstance(value, (int, float)) and not _is_number(value)):
            raise bad(f"thresholds.{key}", "a finite number", value)
    out_shape, labels = data.get("output", {}).get("shape"), data.get("labels")
    if out_shape and labels and out_shape[-1] != len(labels):
        raise ModelError(
            f"{path}: field 'labels': {len(labels)} labels but 'output.shape' {out_shape} has {out_shape[-1]} classes"
        )


VALIDATED_FIELDS = ("data", "split", "accuracy", "confusion_matrix", "measured_by")


def check_validation(path: Path, block: Any) -> None:
    """A manifest's optional ``validation`` block: how (and whether) the model's accuracy was measured.

    ``{"status": "unvalidated", "reason": ...}``, or ``{"status": "validated", "data": {"name", "clips",
    "speakers"}, "split": ..., "accuracy": ..., "confusion_matrix": {"labels", "counts"}, "measured_by": ...}``.
    No block means unvalidated.
    """
    if block is None:
        return
    if not isinstance(block, dict) or block.get("status") not in ("validated", "unvalidated"):
        raise ModelError(f"{path}: 'validation' must be an object with status 'validated' or 'unvalidated'")
    if block["status"] == "validated":
        missing = [k for k in VALIDATED_FIELDS if k not in block]
        if missing:
            raise ModelError(f"{path}: a validated model's 'validation' needs {', '.join(missing)}")
        if not isinstance(block["accuracy"], (int, float)) or not 0 <= block["accuracy"] <= 1:
            raise ModelError(f"{path}: validation accuracy must be a number in [0, 1]")
