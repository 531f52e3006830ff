"""A model's sidecar JSON manifest: file, labels, input range, pre-processing, thresholds."""

from __future__ import annotations

import json
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

    @classmethod
    def load(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelError(f"{path}: model manifest not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path}: manifest is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ModelError(f"{path}: manifest must be a JSON object")
        for key in ("name", "task", "file"):
            if not isinstance(data.get(key), str):
                raise ModelError(f"{path}: manifest needs a string '{key}'")
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
