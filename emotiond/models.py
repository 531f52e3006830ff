"""Load a .tflite model with its JSON manifest on whichever TFLite interpreter is installed.

``ai-edge-litert`` is preferred (numpy 2, current wheels); ``tflite_runtime`` is the fallback (it ran
under arm64 emulation where LiteRT 2.3 crashed). Quantisation is handled here once, so callers pass
and receive float arrays in the model's documented float range.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

BACKENDS: dict[str, str] = {
    "ai_edge_litert": "ai_edge_litert.interpreter",
    "tflite_runtime": "tflite_runtime.interpreter",
}
INSTALL_HINT = (
    "no TFLite interpreter is installed: run `pip install ai-edge-litert` "
    "(or `pip install tflite-runtime 'numpy<2'` where LiteRT has no wheel or crashes)"
)


class ModelError(Exception):
    """A model or its manifest is missing, corrupt or unusable; the message says which file."""


def _import_backend(name: str) -> Callable[..., Any]:
    module = importlib.import_module(BACKENDS[name])
    return module.Interpreter


def available_backends() -> list[str]:
    """Backends whose Python module imports here, in preference order."""
    found = []
    for name in BACKENDS:
        try:
            _import_backend(name)
        except ImportError:
            continue
        found.append(name)
    return found


def interpreter_class(backend: str = "auto") -> tuple[str, Callable[..., Any]]:
    """Return (backend name, Interpreter class).

    ``auto`` takes the first installed backend that passes a self-test in a child process (once per
    process, see emotiond.backend_probe), so a runtime that segfaults cannot take the daemon down.
    """
    if backend != "auto":
        if backend not in BACKENDS:
            raise ModelError(f"unknown interpreter backend {backend!r} (choose from auto, {', '.join(BACKENDS)})")
        try:
            return backend, _import_backend(backend)
        except ImportError as exc:
            raise ModelError(f"interpreter backend {backend!r} is not installed ({exc}); {INSTALL_HINT}") from None
    from emotiond.backend_probe import probed_backend  # imports this module, hence here

    name = probed_backend()
    try:
        return name, _import_backend(name)
    except ImportError as exc:
        raise ModelError(f"interpreter backend {name!r} passed its self-test but does not import here ({exc})") from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


class TFLiteModel:
    """One interpreter with its manifest; ``run`` takes and returns float arrays."""

    def __init__(self, manifest: Manifest, backend: str = "auto", num_threads: int = 1) -> None:
        self.manifest = manifest
        self.backend, interpreter_cls = interpreter_class(backend)
        path = manifest.model_path
        if not path.is_file():
            raise ModelError(f"{path}: model file not found (named by {manifest.path})")
        try:
            self._interpreter = interpreter_cls(model_path=str(path), num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{path}: not a usable TFLite model ({first})") from None
        self._inputs = self._interpreter.get_input_details()
        self._outputs = self._interpreter.get_output_details()
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in self._inputs[0]["shape"])
        self.input_dtype = np.dtype(self._inputs[0]["dtype"])
        expected = manifest.input.get("shape")
        if expected and [int(d) for d in expected][1:] != list(self.input_shape)[1:]:
            raise ModelError(f"{path}: input shape {list(self.input_shape)} does not match manifest {expected}")

    @classmethod
    def from_manifest(cls, path: Path, backend: str = "auto", num_threads: int = 1) -> TFLiteModel:
        return cls(Manifest.load(path), backend, num_threads)

    def _quantize(self, x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
        dtype = np.dtype(detail["dtype"])
        if dtype == np.float32:
            return x.astype(np.float32, copy=False)
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)

    @staticmethod
    def _dequantize(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
        if y.dtype == np.float32:
            return y
        scale, zero = detail["quantization"]
        return (y.astype(np.float32) - zero) * np.float32(scale)

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Run one batch (the model's batch size); x in the manifest's float range."""
        self._interpreter.set_tensor(self._inputs[0]["index"], self._quantize(x, self._inputs[0]))
        self._interpreter.invoke()
        return [self._dequantize(self._interpreter.get_tensor(d["index"]), d) for d in self._outputs]

    def output_by_shape(self) -> dict[tuple[int, ...], int]:
        return {tuple(int(v) for v in d["shape"]): i for i, d in enumerate(self._outputs)}

    def describe(self) -> dict[str, Any]:
        path = self.manifest.model_path
        return {
            "name": self.manifest.name,
            "task": self.manifest.task,
            "file": str(path),
            "size_bytes": path.stat().st_size,
            "sha256": sha256_file(path),
            "input_shape": list(self.input_shape),
            "input_dtype": str(self.input_dtype),
            "labels": list(self.manifest.labels),
            "backend": self.backend,
        }
