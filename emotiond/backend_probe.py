"""Pick a TFLite interpreter that survives: each candidate is first run in a child process.

A native runtime can die with a signal rather than raise (ai-edge-litert 2.3 segfaults at
``allocate_tensors``/``invoke`` under arm64 emulation; a wheel built for a newer CPU could SIGILL on a
Pi 4). Trying it in-process would kill the daemon at start, so the candidate loads the shipped models
and runs their reference inputs in a child; a negative return code (a signal), a timeout, a mismatch
or a missing verdict sends us to the next candidate, and the choice is logged.

``interpreter_class("auto")`` in emotiond.models calls :func:`probed_backend`, which probes the
preferred installed backend once per process (one child, about 0.3 s on x86-64) and only tries the
next when it fails. An explicit ``models.backend`` is taken as is, without a probe.

Command line (used by scripts/install.sh and the arm64 smoke test)::

    python -m emotiond.backend_probe [--backend auto|ai_edge_litert|tflite_runtime] [--all] [--json]

prints the chosen backend name on stdout and exits 0, or exits 69 when none passed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from emotiond.config import DEFAULT_MODELS_DIR
from emotiond.models import BACKENDS, INSTALL_HINT, Manifest, ModelError, TFLiteModel

log = logging.getLogger(__name__)

EX_OK, EX_DATAERR, EX_UNAVAILABLE = 0, 65, 69
PROBE_TIMEOUT_S = 60.0  # a child under qemu takes ~6 s; a hung runtime must not hold the start forever
# Largest |probability difference| to the recorded reference that still counts as the same model.
# int8 kernels are not bit-exact across TFLite versions and CPUs: against the LiteRT 2.3 x86-64
# reference, tflite-runtime 2.14 gave up to 0.066 on x86-64 and 0.098 on aarch64 (under qemu), the
# latter flipping top-1 on two near-ties; reference outputs of shuffled inputs differ by up to 0.99.
PROB_TOLERANCE = 0.125
# Shell words put before the Python that runs the child. Only for user-mode emulation without
# binfmt_misc (the arm64 smoke test), where an emulated process cannot exec an aarch64 binary itself:
# EMOTIOND_PROBE_LAUNCHER="qemu-aarch64-static -L /path/to/arm64-root". Empty everywhere else.
LAUNCHER_ENV = "EMOTIOND_PROBE_LAUNCHER"


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


def probe_manifests(models_dir: Path = DEFAULT_MODELS_DIR) -> list[Path]:
    """The model manifests the probe runs: every parseable manifest whose .tflite is present."""
    found = []
    for path in sorted(Path(models_dir).glob("*.json")):
        try:
            if Manifest.load(path).model_path.is_file():
                found.append(path)
        except ModelError:
            continue  # other JSON files (schemas) live beside the models
    return found


def installed_backends() -> list[str]:
    """Backends whose package is present, in preference order, found without running their code."""
    return [name for name, module in BACKENDS.items() if importlib.util.find_spec(module.split(".")[0])]


@dataclass(frozen=True)
class ProbeResult:
    """One child's verdict on one backend."""

    backend: str
    ok: bool
    reason: str
    returncode: int | None
    seconds: float

    def line(self) -> str:
        return f"{self.backend}: {'ok' if self.ok else 'FAILED'} ({self.seconds:.1f} s) {self.reason}"


def _last_lines(text: str, n: int = 3) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])


def probe(
    backend: str,
    manifests: Sequence[Path] | None = None,
    timeout: float = PROBE_TIMEOUT_S,
    python: str = sys.executable,
) -> ProbeResult:
    """Load and run the models on ``backend`` in a child process and judge how it ended."""
    paths = list(manifests) if manifests is not None else probe_manifests()
    package_parent = str(Path(__file__).resolve().parent.parent)
    # Appended, not prepended: whatever the caller's path puts first (PYTHONPATH) still wins.
    bootstrap = (
        "import sys\n"
        f"if {package_parent!r} not in sys.path: sys.path.append({package_parent!r})\n"
        "from emotiond.backend_probe import child_main\n"
        "sys.exit(child_main(sys.argv[1:]))\n"
    )
    launcher = shlex.split(os.environ.get(LAUNCHER_ENV, ""))
    cmd = [*launcher, python, "-c", bootstrap, "--backend", backend, *[str(p) for p in paths]]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return ProbeResult(backend, False, f"no verdict within {timeout:g} s (killed)", None, time.monotonic() - start)
    except OSError as exc:
        return ProbeResult(backend, False, f"could not start the probe ({exc})", None, time.monotonic() - start)
    seconds = time.monotonic() - start
    code = proc.returncode
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        tail = _last_lines(proc.stderr)
        return ProbeResult(backend, False, f"crashed: killed by {name}" + (f" ({tail})" if tail else ""), code, seconds)
    verdict: dict = {}
    for line in reversed(proc.stdout.strip().splitlines()):
        try:
            verdict = json.loads(line)
            break
        except json.JSONDecodeError:
            continue
    if not isinstance(verdict, dict) or "ok" not in verdict:
        tail = _last_lines(proc.stderr)
        return ProbeResult(backend, False, f"exited {code} without a verdict" + (f" ({tail})" if tail else ""), code, seconds)
    ok = bool(verdict["ok"]) and code == EX_OK
    return ProbeResult(backend, ok, str(verdict.get("reason", "")), code, seconds)


def choose_backend(
    candidates: Sequence[str] | None = None,
    manifests: Sequence[Path] | None = None,
    timeout: float = PROBE_TIMEOUT_S,
    probe_all: bool = False,
) -> tuple[str | None, list[ProbeResult]]:
    """Probe candidates (default: installed backends) in order; the first that passes is chosen."""
    names = installed_backends() if candidates is None else list(candidates)
    chosen: str | None = None
    results: list[ProbeResult] = []
    for name in names:
        if chosen is not None and not probe_all:
            break
        result = probe(name, manifests, timeout)
        results.append(result)
        if result.ok and chosen is None:
            chosen = name
    return chosen, results


_lock = threading.Lock()
_verdict: tuple[str | None, tuple[ProbeResult, ...]] | None = None


def probed_backend() -> str:
    """The backend for ``auto``: probed once per process, failures logged; ModelError if none passes."""
    global _verdict
    with _lock:
        if _verdict is None:
            chosen, results = choose_backend()
            _verdict = (chosen, tuple(results))
            for result in results:
                (log.info if result.ok else log.warning)("interpreter self-test in a child process: %s", result.line())
            if chosen is not None and results[0].backend != chosen:
                log.warning("using %s: the preferred %s failed its self-test", chosen, results[0].backend)
        chosen, results = _verdict
    if chosen is not None:
        return chosen
    if not results:
        raise ModelError(INSTALL_HINT)
    raise ModelError("no usable TFLite interpreter: " + "; ".join(r.line() for r in results))


def reset_probe_cache() -> None:
    """Forget this process's verdict (tests; or after installing another runtime)."""
    global _verdict
    with _lock:
        _verdict = None


# --- the child -----------------------------------------------------------------------------------

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


# --- command line --------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emotiond.backend_probe",
        description="Run each TFLite interpreter on the shipped models in a child process; print the one to use.",
    )
    parser.add_argument("--backend", default="auto", choices=["auto", *BACKENDS],
                        help="probe only this backend (default: installed backends in preference order)")
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR, help="models to run (default: the shipped ones)")
    parser.add_argument("--timeout", type=float, default=PROBE_TIMEOUT_S, help="seconds per child (default %(default)s)")
    parser.add_argument("--all", action="store_true", help="probe every candidate, even after one passed")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    manifests = probe_manifests(args.models_dir)
    candidates = None if args.backend == "auto" else [args.backend]
    chosen, results = choose_backend(candidates, manifests, args.timeout, probe_all=args.all)
    for result in results:
        print(result.line(), file=sys.stderr)
    if args.json:
        print(json.dumps({"chosen": chosen, "probes": [asdict(r) for r in results]}))
    elif chosen:
        print(chosen)
    if chosen is None:
        why = INSTALL_HINT if not results else "no interpreter passed its self-test"
        print(f"emotiond.backend_probe: error: {why}", file=sys.stderr)
        return EX_UNAVAILABLE
    return EX_OK


if __name__ == "__main__":
    sys.exit(main())
