"""The TFLite interpreter backends: their names (one list for config, CLI and probe) and import.

``ai-edge-litert`` is preferred (numpy 2, current wheels); ``tflite_runtime`` is the fallback.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

BACKENDS: dict[str, str] = {
    "ai_edge_litert": "ai_edge_litert.interpreter",
    "tflite_runtime": "tflite_runtime.interpreter",
}
BACKEND_CHOICES: tuple[str, ...] = ("auto", *BACKENDS)  # "auto": the first that passes a self-test
INSTALL_HINT = (
    "no TFLite interpreter is installed: run `pip install ai-edge-litert` "
    "(or `pip install tflite-runtime 'numpy<2'` where LiteRT has no wheel or crashes)"
)


class ModelError(Exception):
    """A model or its manifest is missing, corrupt or unusable; the message says which file."""


def import_backend(name: str) -> Callable[..., Any]:
    module = importlib.import_module(BACKENDS[name])
    return module.Interpreter
