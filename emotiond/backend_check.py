"""The child side of the backend probe: load each model on one backend, compare with its recorded
reference outputs, print one JSON verdict. ``emotiond models`` uses the same ``reference_check``.

It runs in a child process (see emotiond.backend_probe) because a broken runtime may segfault.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emotiond.backends import BACKENDS
from emotiond.exitcodes import EX_DATAERR, EX_OK, EX_UNAVAILABLE
from emotiond.models import ModelError, TFLiteModel

# Largest |probability difference| to the recorded reference that still counts as the same model.
# int8 kernels are not bit-exact across TFLite versions and CPUs: against the LiteRT 2.3 x86-64
# reference, tflite-runtime 2.14 gave up to 0.066 on x86-64 and 0.098 on aarch64 (under qemu), the
# latter flipping top-1 on two near-ties; reference outputs of shuffled inputs differ by up to 0.99.
PROB_TOLERANCE = 0.125


def reference_check(model: TFLiteModel) -> str:
    """Run the model on its recorded reference inputs (else a zero input); 'ok: …' or 'MISMATCH: …'.

    Top-1 must agree except on near-ties (the runtime's label scored within PROB_TOLERANCE of the
    recorded top-1), and no probability may move by more than PROB_TOLERANCE.
    """
    ref_name = model.manifest.raw.get("reference")
    ref_path = model.manifest.path.parent / ref_name if ref_name else None
    if ref_path is None or not ref_path.is_file():
        outputs = model.run(np.zeros(model.input_shape, np.float32))
        finite = all(np.isfinite(o).all() for o in outputs)
        return f"{'ok' if finite else 'MISMATCH'}: ran on a zero input, outputs {[list(o.shape) for o in outputs]}"
    ref = np.load(ref_path)
    inputs, expected = ref["inputs_float"], ref["int8_probs"]
    got = np.stack([model.run(x[None])[0].reshape(-1) for x in inputs])
    diff = float(np.abs(got - expected).max()) if np.isfinite(got).all() else float("inf")
    rows = np.arange(len(got))
    top_got = got.argmax(1)
    agree = top_got == expected.argmax(1)
    near_tie = expected[rows, top_got] >= expected.max(1) - PROB_TOLERANCE
    ok = bool(np.all(agree | near_tie)) and diff <= PROB_TOLERANCE
    ties = int(np.sum(~agree & near_tie))
    return (
        f"{'ok' if ok else 'MISMATCH'}: {len(inputs)} reference inputs, top-1 agreement {agree.mean():.0%}"
        f"{f' ({ties} near-tie)' if ties else ''}, max |diff| {diff:.4f} (tolerance {PROB_TOLERANCE})"
    )


def child_main(argv: Sequence[str]) -> int:
    """In the child: import the backend, load and run every given model, print one JSON verdict."""
    parser = argparse.ArgumentParser(prog="emotiond.backend_probe (child)")
    parser.add_argument("--backend", required=True, choices=list(BACKENDS))
    parser.add_argument("manifests", nargs="*", type=Path)
    args = parser.parse_args(argv)

    def verdict(ok: bool, reason: str, code: int) -> int:
        print(json.dumps({"backend": args.backend, "ok": ok, "reason": reason}), flush=True)
        return code

    if importlib.util.find_spec(BACKENDS[args.backend].split(".")[0]) is None:
        return verdict(False, "not installed", EX_UNAVAILABLE)
    if not args.manifests:
        return verdict(False, "no model to run it on (no manifests found)", EX_UNAVAILABLE)
    checks = []
    for path in args.manifests:
        try:
            model = TFLiteModel.from_manifest(path, backend=args.backend)
            result = reference_check(model)
        except ModelError as exc:
            return verdict(False, str(exc), EX_UNAVAILABLE)
        checks.append(f"{model.manifest.name} {result}")
        if not result.startswith("ok"):
            return verdict(False, "; ".join(checks), EX_DATAERR)
    return verdict(True, "; ".join(checks), EX_OK)
