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

from emotiond.backends import BACKEND_CHOICES, BACKENDS, INSTALL_HINT, ModelError
from emotiond.config import DEFAULT_MODELS_DIR
from emotiond.exitcodes import EX_OK, EX_UNAVAILABLE
from emotiond.manifest import Manifest

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 60.0  # a child under qemu takes ~6 s; a hung runtime must not hold the start forever
# Shell words put before the Python that runs the child. Only for user-mode emulation without
# binfmt_misc (the arm64 smoke test), where an emulated process cannot exec an aarch64 binary itself:
# EMOTIOND_PROBE_LAUNCHER="qemu-aarch64-static -L /path/to/arm64-root". Empty everywhere else.
LAUNCHER_ENV = "EMOTIOND_PROBE_LAUNCHER"


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
        "from emotiond.backend_check import child_main\n"
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
            first, probes = choose_backend()
            _verdict = (first, tuple(probes))
            for result in probes:
                (log.info if result.ok else log.warning)("interpreter self-test in a child process: %s", result.line())
            if first is not None and probes[0].backend != first:
                log.warning("using %s: the preferred %s failed its self-test", first, probes[0].backend)
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


# --- command line --------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emotiond.backend_probe",
        description="Run each TFLite interpreter on the shipped models in a child process; print the one to use.",
    )
    parser.add_argument("--backend", default="auto", choices=list(BACKEND_CHOICES),
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
