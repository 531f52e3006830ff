#!/usr/bin/env bash
# arm64 smoke test: does emotiond, with exactly the pins of the suite's lock file, install and run on
# the Pi's platform, with ai-edge-litert (the default interpreter)? Runs on an x86-64 host under qemu
# user-mode emulation, without binfmt_misc and without a Pi. Two suites, one per supported OS:
#   bookworm  Debian 12 arm64, Python 3.11, glibc 2.36, requirements-pi.txt (both interpreters)
#   trixie    Debian 13 arm64, Python 3.13, glibc 2.41, requirements-pi-trixie.txt (ai-edge-litert only)
# Steps:
#   1. an arm64 root: `debootstrap --foreign` (python3, python3-venv) + `dpkg -x` of its .debs, and a
#      Pi 4's CPU description inside it (proc/cpuinfo, sys/devices/system/cpu/{possible,present,online}):
#      qemu looks paths up below -L first, so the runtimes' CPU detection reads an ARM CPU, not the host's
#   2. the aarch64 wheels for every line of the lock (pure-Python sdists built here)
#   3. a venv inside that root; pip *running under the emulator* installs the lock with --no-index
#      (so a dependency missing from the lock fails here), then the emotiond wheel built from this checkout
#   4. under the emulator: the interpreter probe (ai-edge-litert must pass), `emotiond models`,
#      `emotiond classify` on a face, `emotiond classify-audio` on a generated WAV and on the shipped
#      speech sample, `emotiond demo`; on bookworm also the tflite-runtime fallback (a crashing
#      ai-edge-litert must be detected and tflite-runtime chosen; models.backend = "tflite_runtime")
# Prints every command it runs; exits non-zero on the first failure; the last line is
# "PASS: ... suite SUITE (aarch64 Python X.Y.Z glibc G), ..., interpreter NAME VERSION".
#
# Usage: scripts/arm64_smoke.sh [--suite bookworm|trixie] [--cache DIR] [--cpu MODEL] [--mirror URL]
#                               [--clean] [--host-cpuinfo] [--prepare-only]
#   --suite NAME    which OS root and lock (default bookworm); CI runs both
#   --cache DIR     where roots, wheels and venvs are kept between runs (default: .cache/arm64);
#                   both suites may share one (their entries are named by suite and lock digest)
#   --cpu MODEL     qemu CPU model (default cortex-a72: the Pi 4's ARMv8.0-A, the oldest ISA we support,
#                   so code needing newer instructions dies here; cortex-a76 is the Pi 5; max = all)
#   --mirror URL    Debian mirror for debootstrap (default: http://deb.debian.org/debian)
#   --clean         delete this suite's cached root, wheels and venv first (CI starts from a fresh clone)
#   --host-cpuinfo  leave the ARM CPU description out of the root (the runtimes then read the x86 host's
#                   /proc/cpuinfo and crash: the emulation artefact); ai-edge-litert is then not required
#                   (bookworm falls back to tflite-runtime; trixie, with no fallback, fails)
#   --prepare-only  build the root and download the wheels into the cache, then stop (CI prepares the
#                   next suite this way while the first one runs)
# Needs: the apt packages qemu-user-static, debootstrap and binutils (installed here when missing), network
# access to PyPI and deb.debian.org, root (debootstrap), and a host Python with pip and numpy:
# $PYTHON, else the project's .venv (scripts/setup_env.sh --dev), else python3.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=$REPO/.cache/arm64
MIRROR=http://deb.debian.org/debian
SUITE=bookworm
CLEAN=0
CPU=cortex-a72
CPU_FILES=1
PREPARE_ONLY=0
SDIST_ONLY="python_speech_features"   # pure Python, no wheel on PyPI: built into a py3-none-any wheel here
if [ -n "${PYTHON:-}" ]; then HOST_PY=$PYTHON
elif [ -x "$REPO/.venv/bin/python" ]; then HOST_PY=$REPO/.venv/bin/python
else HOST_PY=python3; fi
STEP_TIMEOUT=${ARM64_SMOKE_STEP_TIMEOUT:-900}   # seconds per emulated command

while [ $# -gt 0 ]; do
    case "$1" in
        --cache) CACHE=$2; shift 2 ;;
        --cache=*) CACHE=${1#*=}; shift ;;
        --mirror) MIRROR=$2; shift 2 ;;
        --cpu) CPU=$2; shift 2 ;;
        --cpu=*) CPU=${1#*=}; shift ;;
        --mirror=*) MIRROR=${1#*=}; shift ;;
        --suite) SUITE=$2; shift 2 ;;
        --suite=*) SUITE=${1#*=}; shift ;;
        --clean) CLEAN=1; shift ;;
        --host-cpuinfo) CPU_FILES=0; shift ;;
        --prepare-only) PREPARE_ONLY=1; shift ;;
        -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
        *) echo "arm64_smoke: unknown argument $1 (try --help)" >&2; exit 64 ;;
    esac
done

# Per suite: the lock, the root's Python and glibc (manylinux tags up to it), the fallback interpreter.
case "$SUITE" in
    bookworm) LOCK=$REPO/requirements-pi.txt PYV=3.11 GLIBC_MINOR=36 FALLBACK=tflite_runtime ;;
    trixie) LOCK=$REPO/requirements-pi-trixie.txt PYV=3.13 GLIBC_MINOR=41 FALLBACK="" ;;
    *) echo "arm64_smoke: unknown suite $SUITE (bookworm or trixie)" >&2; exit 64 ;;
esac
PYTAG=cp${PYV/./}
START=$SECONDS
log() { printf '\n== [%4ds] %s\n' "$((SECONDS - START))" "$*"; }
die() { echo "arm64_smoke: FAIL: $*" >&2; exit 1; }

if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null ||
    ! command -v readelf >/dev/null; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    log "installing the Debian packages qemu-user-static debootstrap binutils"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        qemu-user-static debootstrap binutils >/dev/null
fi
for tool in qemu-aarch64-static debootstrap dpkg sha256sum readelf; do
    command -v "$tool" >/dev/null || die "$tool not found: apt-get install qemu-user-static debootstrap binutils"
done
"$HOST_PY" -m pip --version >/dev/null 2>&1 || die "$HOST_PY has no pip"
[ -f "$LOCK" ] || die "$LOCK missing"

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
ulimit -c 0   # qemu would otherwise write a core file for every crashing child
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV

ROOT=$CACHE/root-$SUITE
QEMU=(qemu-aarch64-static -cpu "$CPU" -L "$ROOT")
CACHE_FORMAT=2   # bump when the way wheels or the venv are made changes
LOCK_KEY=$( (cat "$LOCK"; echo "$SUITE $CACHE_FORMAT") | sha256sum | cut -c1-12)
WHEELS=$CACHE/wheels-$SUITE-$LOCK_KEY
VENV=$CACHE/venv-$SUITE-$LOCK_KEY
WORK=$CACHE/run-$SUITE
[ "$CLEAN" = 1 ] && { log "removing the cached $SUITE root, wheels and venvs in $CACHE"; rm -rf "$ROOT" "$CACHE/wheels-$SUITE-"* "$CACHE/venv-$SUITE-"*; }
rm -rf "$WORK" && mkdir -p "$WORK"

# run NAME CMD...: print the command, run it (stdout/stderr to $WORK/NAME.*), fail with the stderr tail.
run() {
    local name=$1; shift
    printf '+ %s\n' "$*"
    local t0=$SECONDS rc=0
    timeout "$STEP_TIMEOUT" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
    printf '  -> exit %d in %ds\n' "$rc" "$((SECONDS - t0))"
    if [ "$rc" != 0 ]; then
        echo "---- stdout (tail) ----"; tail -n 20 "$WORK/$name.out"
        echo "---- stderr (tail) ----"; tail -n 30 "$WORK/$name.err"
        die "$name exited $rc"
    fi
}

# run_net NAME CMD...: like run, for downloads: up to 3 attempts before failing.
run_net() {
    local name=$1 attempt; shift
    for attempt in 1 2; do
        printf '+ %s\n' "$*"
        if timeout "$STEP_TIMEOUT" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then return 0; fi
        echo "  -> failed (attempt $attempt): $(grep -v '^WARNING' "$WORK/$name.err" | tail -n 1 | cut -c1-200)"
        sleep $((attempt * 15))
    done
    run "$name" "$@"
}

# --- 1. the arm64 root ---------------------------------------------------------------------------
if [ -f "$ROOT/.smoke-root-ok" ]; then
    log "arm64 root: cached at $ROOT"
else
    log "arm64 root: debootstrap --foreign $SUITE + dpkg -x"
    rm -rf "$ROOT"
    run_net debootstrap debootstrap --arch=arm64 --foreign --variant=minbase --include=python3,python3-venv \
        "$SUITE" "$ROOT" "$MIRROR"
    debs=("$ROOT"/var/cache/apt/archives/*.deb)
    printf '+ dpkg -x each of %s .debs into the root\n' "${#debs[@]}"
    for deb in "${debs[@]}"; do dpkg -x "$deb" "$ROOT"; done
    rm -f "$ROOT"/var/cache/apt/archives/*.deb
    touch "$ROOT/.smoke-root-ok"
fi

# A Raspberry Pi 4's CPU as its arm64 kernel describes it. qemu-user passes /proc and /sys reads to the
# host kernel, whose x86 description makes ai-edge-litert's and onnxruntime's CPU detection crash;
# files below -L are found first. Written on every run (cheap), removed with --host-cpuinfo.
rm -f "$ROOT/proc/cpuinfo" "$ROOT"/sys/devices/system/cpu/{possible,present,online}
if [ "$CPU_FILES" = 1 ]; then
    mkdir -p "$ROOT/proc" "$ROOT/sys/devices/system/cpu"
    for n in 0 1 2 3; do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$n"
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
    done >"$ROOT/proc/cpuinfo"
    printf 'Hardware\t: BCM2835\nRevision\t: c03111\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n' >>"$ROOT/proc/cpuinfo"
    for f in possible present online; do echo 0-3 >"$ROOT/sys/devices/system/cpu/$f"; done
    echo "CPU description in the root: Cortex-A72 (CPU part 0xd08) x4, $(grep -m1 Features "$ROOT/proc/cpuinfo")"
else
    echo "CPU description in the root: none (--host-cpuinfo: the runtimes read the host's)"
fi

run platform "${QEMU[@]}" "$ROOT/usr/bin/python$PYV" -c \
    'import platform, sys; print(platform.machine(), "Python", sys.version.split()[0], "glibc", platform.libc_ver()[1])'
cat "$WORK/platform.out"
case "$(head -n 1 "$WORK/platform.out")" in
    "aarch64 Python $PYV."*) ;;
    *) die "the emulated python is not aarch64 Python $PYV" ;;
esac

# --- 2. aarch64 wheels for exactly the pinned set -----------------------------------------------
if [ -f "$WHEELS/.ok" ]; then
    log "wheels: cached at $WHEELS"
else
    log "wheels: pip download (aarch64, $PYTAG, manylinux <= glibc 2.$GLIBC_MINOR) for $(basename "$LOCK")"
    rm -rf "$WHEELS" "$WHEELS.tmp" && mkdir -p "$WHEELS.tmp"
    platforms=(--platform manylinux2014_aarch64 --platform linux_aarch64)
    for minor in $(seq 17 "$GLIBC_MINOR"); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
    sdist_re=$(echo "$SDIST_ONLY" | tr ' ' '|')
    grep -vE "^($sdist_re)==" "$LOCK" >"$WORK/binary-reqs.txt"
    run_net pip-download "$HOST_PY" -m pip download --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version "$PYV" --implementation cp --abi "$PYTAG" --abi abi3 --abi none "${platforms[@]}" \
        -d "$WHEELS.tmp" -r "$WORK/binary-reqs.txt"
    grep -E "^($sdist_re)==" "$LOCK" >"$WORK/sdist-reqs.txt" || true
    if [ -s "$WORK/sdist-reqs.txt" ]; then
        run_net pip-wheel "$HOST_PY" -m pip wheel --disable-pip-version-check --no-deps --no-binary=:all: \
            -w "$WHEELS.tmp" -r "$WORK/sdist-reqs.txt"
    fi
    for whl in "$WHEELS.tmp"/*.whl; do
        case "$whl" in
            *aarch64*.whl|*-none-any.whl) ;;
            *) die "$(basename "$whl") is neither aarch64 nor pure Python" ;;
        esac
    done
    mv "$WHEELS.tmp" "$WHEELS" && touch "$WHEELS/.ok"
fi
wheels=("$WHEELS"/*.whl)
echo "${#wheels[@]} wheels, $(du -sh "$WHEELS" | cut -f1)"
if [ "$PREPARE_ONLY" = 1 ]; then
    log "prepared: $SUITE root and wheels in $CACHE (--prepare-only)"
    exit 0
fi

# --- 3. venv in the root; pip under the emulator installs the lock, then emotiond ----------------
pip_wheels=("$ROOT"/usr/share/python-wheels/pip-*.whl)
PIP_WHL=${pip_wheels[0]}
[ -f "$PIP_WHL" ] || die "no pip wheel in the root (python3-pip-whl, pulled in by python3-venv)"
VPY=("${QEMU[@]}" "$VENV/bin/python")
if [ -f "$VENV/.ok" ]; then
    log "venv: cached at $VENV"
else
    log "venv: python$PYV -m venv, then pip (aarch64, emulated) installs $(basename "$LOCK") --no-index"
    rm -rf "$VENV"
    run venv "${QEMU[@]}" "$ROOT/usr/bin/python$PYV" -m venv --without-pip "$VENV"
    run pip-install "${VPY[@]}" "$PIP_WHL/pip" install --disable-pip-version-check --no-index --no-compile \
        --find-links "$WHEELS" -r "$LOCK"
    tail -n 1 "$WORK/pip-install.out"
    touch "$VENV/.ok"
fi

log "emotiond: build a wheel from this checkout, install it into the venv (no deps, no index)"
SRC=$WORK/src
mkdir -p "$SRC" "$WORK/dist"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # tracked and untracked-but-not-ignored files: what a clone would hold, without .cache or build/
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
        tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$SRC"
else
    (cd "$REPO" && tar --exclude=./.cache --exclude=./build --exclude=./.git -cf - .) | tar -xf - -C "$SRC"
fi
run_net emotiond-wheel "$HOST_PY" -m pip wheel --disable-pip-version-check --no-deps \
    -w "$WORK/dist" "$SRC"
run emotiond-install "${VPY[@]}" "$PIP_WHL/pip" install --disable-pip-version-check --no-index --no-deps \
    --force-reinstall --no-compile "$WORK"/dist/emotiond-*.whl
tail -n 1 "$WORK/emotiond-install.out"
# The Pi 5's kernel uses 16 KiB pages: a shared object whose LOAD segments are aligned to less cannot
# be mapped there. qemu-user runs with the host's 4 KiB pages, so check the alignment itself.
log "page size: every ELF shared object in the venv must have LOAD segments aligned to >= 16 KiB (Pi 5)"
printf '+ readelf -lW on each *.so* below %s\n' "$VENV"
small=() aligns=()
while IFS= read -r -d '' so; do
    while read -r align; do
        aligns+=("$align")
        if [ $((align)) -lt 16384 ]; then small+=("${so#"$VENV"/} ($align)"); fi
    done < <(readelf -lW "$so" 2>/dev/null | awk '$1 == "LOAD" {print $NF}' | sort -u)
done < <(find "$VENV" -name '*.so*' -type f -print0)
[ ${#aligns[@]} -gt 0 ] || die "no shared objects found in $VENV"
echo "  shared objects by LOAD alignment: $(printf '%s\n' "${aligns[@]}" | sort | uniq -c | awk '{printf "%s%s x %s", (NR > 1 ? ", " : ""), $1, $2}')"
[ ${#small[@]} -eq 0 ] || die "aligned below 16 KiB, would not load on a Pi 5 kernel: ${small[*]}"

SHARE=$VENV/share/emotiond
CFG=$SHARE/config.toml
EMOTIOND=("${VPY[@]}" "$VENV/bin/emotiond" -c "$CFG")
if [ ! -f "$CFG" ] || [ ! -f "$SHARE/models/expression.json" ]; then
    die "the wheel did not install share/emotiond (config, models)"
fi

# --- 4. under the emulator -----------------------------------------------------------------------
cd "$WORK"   # not the checkout: `import emotiond` must find the installed package
# Without binfmt_misc an emulated process cannot exec an aarch64 binary: the probe's child is started
# through the (x86-64) emulator instead, which an emulated process can exec.
export EMOTIOND_PROBE_LAUNCHER="qemu-aarch64-static -cpu $CPU -L $ROOT"

log "import every runtime dependency; gpiozero (MockFactory) and luma (dummy device) do real work"
run imports "${VPY[@]}" -c '
import importlib.metadata as md, platform
import cv2, numpy, scipy, python_speech_features, webrtcvad, paho.mqtt.client, PIL
from gpiozero import Button, Device
from gpiozero.pins.mock import MockFactory
from luma.core.device import dummy
from luma.core.render import canvas
Device.pin_factory = MockFactory()
button = Button(17)
button.pin.drive_low()
assert button.is_pressed
device = dummy(width=128, height=64)
with canvas(device) as draw:
    draw.rectangle((0, 0, 20, 10), fill="white")
assert device.image.getbbox() is not None
vad = webrtcvad.Vad(2)
assert vad.is_speech(b"\0\0" * 160, 16000) in (True, False)
runtimes = []
for dist in ("ai-edge-litert", "tflite-runtime"):
    try:
        runtimes += [dist, md.version(dist)]
    except md.PackageNotFoundError:
        pass
print(platform.machine(), "numpy", numpy.__version__, "opencv", cv2.__version__, "scipy", scipy.__version__, *runtimes)
'
cat "$WORK/imports.out"

log "interpreter probe: each installed runtime in a child process on the shipped models"
run probe "${VPY[@]}" -m emotiond.backend_probe --all --json
cat "$WORK/probe.err"
CHOSEN=$("$HOST_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["chosen"])' "$WORK/probe.out")
echo "chosen: $CHOSEN"
if [ "$CPU_FILES" = 1 ] && [ "$CHOSEN" != ai_edge_litert ]; then
    die "the default interpreter ai_edge_litert did not pass its self-test (chosen: $CHOSEN)"
fi

log "emotiond models (self-test on the reference inputs, backend 'auto')"
run models "${EMOTIOND[@]}" models
cat "$WORK/models.out"
grep -E "backend_probe|using " "$WORK/models.err" | sed 's/^/  log: /' || true
grep -q "\[$CHOSEN\]" "$WORK/models.out" || die "emotiond models did not use the probed backend $CHOSEN"

log "emotiond classify on a public-domain face (NASA astronaut portrait)"
FACE=$SHARE/samples/astronaut.jpg
if [ ! -f "$FACE" ]; then
    FACE=$WORK/astronaut.png
    run make-face "$HOST_PY" -c 'import sys, cv2, skimage.data; cv2.imwrite(sys.argv[1], cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))' "$FACE"
fi
run classify "${EMOTIOND[@]}" classify "$FACE"
cat "$WORK/classify.out"
"$HOST_PY" - "$WORK/classify.out" <<'EOF' || die "classify found no face with an expression label"
import json, sys
result = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
faces = result["faces"]
assert faces and all(f.get("label") for f in faces), result
print(f"  {len(faces)} face(s): " + ", ".join(f"{f['label']} {f['confidence']:.2f}" for f in faces))
EOF

log "emotiond classify-audio on a generated WAV (22.05 kHz stereo, a gliding vowel-like tone)"
if "${EMOTIOND[@]}" --help 2>/dev/null | grep -q "classify-audio"; then
    run make-wav "$HOST_PY" - "$WORK/generated.wav" <<'EOF'
import sys, wave
import numpy as np
rate, seconds = 22050, 2.0
t = np.arange(int(rate * seconds)) / rate
f0 = 140 + 40 * np.sin(2 * np.pi * 1.5 * t)                       # pitch glide, Hz
phase = 2 * np.pi * np.cumsum(f0) / rate
voice = sum(np.sin(k * phase) / k for k in range(1, 12))            # harmonic-rich source
envelope = 0.5 * (1 - np.cos(2 * np.pi * 3 * t)) * (t > 0.2) * (t < 1.8)  # three "syllables"
mono = 0.3 * voice * envelope / np.abs(voice).max()
pcm = (np.stack([mono, 0.8 * mono], 1) * 32767).astype("<i2")
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(2); w.setsampwidth(2); w.setframerate(rate); w.writeframes(pcm.tobytes())
EOF
    run classify-audio "${EMOTIOND[@]}" classify-audio "$WORK/generated.wav"
    cut -c1-400 "$WORK/classify-audio.out"
    "$HOST_PY" -c 'import json,sys; json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])' \
        "$WORK/classify-audio.out" || die "classify-audio did not print a JSON line"
    if [ -f "$SHARE/samples/speech.wav" ]; then
        run classify-speech "${EMOTIOND[@]}" classify-audio "$SHARE/samples/speech.wav"
        cut -c1-400 "$WORK/classify-speech.out"
    fi
else
    echo "SKIPPED: this checkout's emotiond has no classify-audio command"
fi

log "emotiond demo (bundled sample video, every frame, events to stdout)"
run demo "${EMOTIOND[@]}" demo --video "$SHARE/samples/demo.mp4"
"$HOST_PY" - "$WORK/demo.out" <<'EOF' || die "demo printed no emotion event"
import collections, json, sys
events = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
counts = collections.Counter(e.get("type") for e in events)
print("  events:", dict(counts))
assert counts["emotion"] > 0 and counts["face_appeared"] > 0, counts
EOF
grep -E "backend_probe|using " "$WORK/demo.err" | sed 's/^/  log: /' || true

if [ "$FALLBACK" = tflite_runtime ]; then
    log "fallback: ai-edge-litert made to crash (a shim package that dies with SIGSEGV on import, first on"
    echo "   PYTHONPATH); backend 'auto' must detect it in the probe child and choose tflite_runtime"
    SHIM=$WORK/crashing-litert
    mkdir -p "$SHIM/ai_edge_litert"
    printf 'import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n' >"$SHIM/ai_edge_litert/interpreter.py"
    : >"$SHIM/ai_edge_litert/__init__.py"
    run fallback-probe env PYTHONPATH="$SHIM" "${VPY[@]}" -m emotiond.backend_probe --all --json
    cat "$WORK/fallback-probe.err"
    "$HOST_PY" - "$WORK/fallback-probe.out" <<'EOF' || die "the probe did not fall back from a crashing ai-edge-litert to tflite_runtime"
import json, sys
verdict = json.load(open(sys.argv[1]))
first = verdict["probes"][0]
assert verdict["chosen"] == "tflite_runtime", verdict
assert first["backend"] == "ai_edge_litert" and "SIGSEGV" in first["reason"], first
EOF
    run fallback-models env PYTHONPATH="$SHIM" "${EMOTIOND[@]}" models
    cat "$WORK/fallback-models.out"
    grep -E "backend_probe|using " "$WORK/fallback-models.err" | sed 's/^/  log: /' || true
    grep -q "\[tflite_runtime\]" "$WORK/fallback-models.out" || die "emotiond models (auto) did not fall back to tflite_runtime"

    log "fallback: models.backend = \"tflite_runtime\" (explicit, no probe): classify and demo"
    run fallback-classify env EMOTIOND_MODELS__BACKEND=tflite_runtime "${EMOTIOND[@]}" classify "$FACE"
    "$HOST_PY" - "$WORK/fallback-classify.out" <<'EOF' || die "classify with tflite_runtime found no face with a label"
import json, sys
faces = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["faces"]
assert faces and all(f.get("label") for f in faces), faces
print(f"  {len(faces)} face(s): " + ", ".join(f"{f['label']} {f['confidence']:.2f}" for f in faces))
EOF
    run fallback-demo env EMOTIOND_MODELS__BACKEND=tflite_runtime "${EMOTIOND[@]}" demo --video "$SHARE/samples/demo.mp4"
    "$HOST_PY" - "$WORK/fallback-demo.out" <<'EOF' || die "demo with tflite_runtime printed no emotion event"
import collections, json, sys
counts = collections.Counter(json.loads(line).get("type") for line in open(sys.argv[1]) if line.startswith("{"))
print("  events:", dict(counts))
assert counts["emotion"] > 0 and counts["face_appeared"] > 0, counts
EOF
    FALLBACK_NOTE=", fallback tflite_runtime $("$HOST_PY" -c 'import re,sys; print(re.search(r"^tflite-runtime==(\S+)", open(sys.argv[1]).read(), re.M)[1])' "$LOCK") ok"
else
    FALLBACK_NOTE=", no fallback interpreter on $SUITE"
fi

VERSION=$(grep -oE "${CHOSEN//_/-} [0-9][^ ]*" "$WORK/imports.out" | cut -d' ' -f2 || true)
log "PASS: arm64 smoke test, suite $SUITE ($(cut -d' ' -f1-5 "$WORK/platform.out"), qemu -cpu $CPU, interpreter $CHOSEN ${VERSION:-?}$FALLBACK_NOTE) in $((SECONDS - START)) s"
