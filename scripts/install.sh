#!/usr/bin/env bash
# Install emotiond on Raspberry Pi OS (arm64) as a systemd service; see docs/raspberry-pi.md.
#
# Supported: Bookworm (Debian 12) with Python 3.11 and Trixie (Debian 13) with Python 3.13, both
# aarch64. The dependencies are installed exactly as pinned in the lock file for the running OS
# (requirements-pi.txt, requirements-pi-trixie.txt: the sets scripts/arm64_smoke.sh proves); any
# other OS, architecture or Python is refused unless --force.
#
# Idempotent: every step checks first and only acts when something is missing or out of date, so a
# second run changes nothing and says so. --dry-run prints each action instead of doing it.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: sudo scripts/install.sh [options]

  --with-broker     also install the mosquitto MQTT broker (and clients) on this machine
  --uninstall       stop and remove the service and /opt/emotiond (config and state are kept)
  --purge           with --uninstall: also remove /etc/emotiond, /var/lib/emotiond and the user
  --dry-run         print every action it would take; change nothing
  --root DIR        install below DIR instead of / (for tests and images); implies no service start
  --prefix DIR      install directory (default /opt/emotiond)
  --python PATH     interpreter for the venv (default /usr/bin/python3)
  --extras LIST     pip extras (default pi,gpio,display)
  --no-apt          skip the apt packages
  --no-user         skip creating the emotiond user and its groups
  --no-systemd      skip installing/enabling the unit
  --force           install on an unsupported OS / architecture / Python too (with the lock file
                    of its Debian release if there is one, else setup.py's unpinned ranges)
  --os-release FILE read the OS from FILE instead of /etc/os-release (tests, image builds)
  --machine ARCH    take ARCH as the architecture (arm64 or aarch64 are supported) instead of
                    dpkg's (tests, image builds)
  -h, --help        this text
EOF
}

# --- options ---------------------------------------------------------------------------------------
SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=""
PREFIX=/opt/emotiond
PYTHON=/usr/bin/python3
EXTRAS="pi,gpio,display"
WITH_BROKER=0 UNINSTALL=0 PURGE=0 DRY_RUN=0 DO_APT=1 DO_USER=1 DO_SYSTEMD=1 FORCE=0
OS_RELEASE=/etc/os-release
MACHINE=""  # default: dpkg's architecture (a 32-bit userland on a 64-bit Pi kernel is armhf), else uname -m
SERVICE_USER=emotiond
GROUPS_NEEDED=(video audio gpio i2c)

ARGS=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --with-broker) WITH_BROKER=1 ;;
        --uninstall) UNINSTALL=1 ;;
        --purge) PURGE=1 ;;
        --dry-run) DRY_RUN=1 ;;
        --root) ROOT=${2:?--root needs a directory}; shift ;;
        --prefix) PREFIX=${2:?--prefix needs a directory}; shift ;;
        --python) PYTHON=${2:?--python needs a path}; shift ;;
        --extras) EXTRAS=${2?--extras needs a list}; shift ;;
        --no-apt) DO_APT=0 ;;
        --no-user) DO_USER=0 ;;
        --no-systemd) DO_SYSTEMD=0 ;;
        --force) FORCE=1 ;;
        --os-release) OS_RELEASE=${2:?--os-release needs a file}; shift ;;
        --machine) MACHINE=${2:?--machine needs an architecture}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (try --help)" >&2; exit 64 ;;
    esac
    shift
done
if [ -n "$ROOT" ] && [ -d "$ROOT" ]; then
    ROOT=$(cd "$ROOT" && pwd)
fi

VENV="$ROOT$PREFIX/venv"
ETC="$ROOT/etc/emotiond"
UNIT_DIR="$ROOT/etc/systemd/system"
UNIT="$UNIT_DIR/emotiond.service"
STAMP="$ROOT$PREFIX/.installed-source"
CHANGES=0
SERVICE_STALE=0  # code or unit changed: a running service must be restarted
LOCK=""          # the lock file for this OS (set by check_platform), empty: unpinned
FALLBACK=""      # the interpreter to try when ai-edge-litert fails its self-test, empty: none

# --- helpers ---------------------------------------------------------------------------------------
say() { printf '%s\n' "$*"; }
ok() { say "ok:   $*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

# Run one changing action (or, with --dry-run, print it); counts changes for the final summary.
act() {
    local shown="" arg
    CHANGES=$((CHANGES + 1))
    for arg in "$@"; do  # shown as one could paste it into a shell
        if [[ $arg =~ ^[A-Za-z0-9_./=:,+@%-]+$ ]]; then shown+="$arg "; else shown+="'$arg' "; fi
    done
    if [ "$DRY_RUN" = 1 ]; then
        say "would: ${shown% }"
    else
        say "+ ${shown% }"
        "$@"
    fi
}

installed_pkg() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
available_pkg() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }

source_digest() {
    (
        cd "$SOURCE"
        find setup.py config.toml emotiond models samples systemd -type f \
            ! -path '*/__pycache__/*' ! -name '*.pyc' 2>/dev/null | LC_ALL=C sort | xargs -d '\n' sha256sum
        echo "extras=$EXTRAS"
        if [ -n "$LOCK" ]; then sha256sum "$LOCK"; fi
    ) | sha256sum | cut -d' ' -f1
}

# Copy a file unless an identical one is already there; $3: mode.
install_file() {
    local src=$1 dst=$2 mode=$3
    if [ -f "$dst" ] && cmp -s "$src" "$dst"; then
        ok "$dst is up to date"
        return 1
    fi
    act install -D -m "$mode" "$src" "$dst"
}

# systemctl, acting on the unit files below --root when one is given.
SYSTEMCTL=(systemctl)
if [ -n "$ROOT" ]; then
    SYSTEMCTL+=(--root="$ROOT")
fi

# --- steps -----------------------------------------------------------------------------------------
# ==== check_platform ===============================================================================
# Which OS this is, hence which lock file and whether a fallback interpreter exists. A combination
# not listed here has never been run: refused unless --force, so nobody gets a half-working install
# silently.
#   codename  Python  lock file                   fallback when ai-edge-litert fails
#   bookworm  3.11    requirements-pi.txt         tflite-runtime 2.14 (cp311 wheels; needs numpy<2)
#   trixie    3.13    requirements-pi-trixie.txt  none (tflite-runtime has no wheel for 3.12/3.13)
SUPPORTED="Raspberry Pi OS / Debian Bookworm (12) with Python 3.11, Trixie (13) with Python 3.13, both 64-bit arm64 (aarch64)"

os_field() {  # $1: a key of os-release; its value, unquoted ("" when absent)
    local line
    line=$(grep -m1 "^$1=" "$OS_RELEASE" 2>/dev/null) || true
    line=${line#*=}
    line=${line#[\"\']}
    printf '%s' "${line%[\"\']}"
}

check_platform() {
    local codename="" pretty="" want_py="" python_version lock_name="" problems=()
    if [ "$DRY_RUN" = 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
        die "run as root: sudo $0 ${ARGS[*]}"
    fi
    if [ "$UNINSTALL" = 1 ]; then
        return  # removing works anywhere
    fi
    if [ -r "$OS_RELEASE" ]; then
        codename=$(os_field VERSION_CODENAME)
        pretty=$(os_field PRETTY_NAME)
        case "$codename" in
            bookworm) want_py=3.11 lock_name=requirements-pi.txt FALLBACK=tflite_runtime ;;
            trixie) want_py=3.13 lock_name=requirements-pi-trixie.txt FALLBACK="" ;;
            *) problems+=("the OS is ${pretty:-unnamed} (${codename:-no VERSION_CODENAME in $OS_RELEASE})") ;;
        esac
    else
        problems+=("cannot tell the OS: no $OS_RELEASE")
    fi
    [ -x "$PYTHON" ] || die "no python at $PYTHON (install python3 or pass --python)"
    python_version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ||
        die "$PYTHON does not run"
    if [ -n "$want_py" ] && [ "$python_version" != "$want_py" ]; then
        problems+=("$PYTHON is Python $python_version, $codename's lock file is for Python $want_py")
    fi
    if [ -z "$MACHINE" ]; then
        MACHINE=$(dpkg --print-architecture 2>/dev/null || uname -m)
    fi
    case "$MACHINE" in
        arm64|aarch64) ;;
        *) problems+=("the architecture is $MACHINE, not arm64 (aarch64)") ;;
    esac
    if [ -n "$lock_name" ]; then
        LOCK=$SOURCE/$lock_name
        [ -f "$LOCK" ] || die "$LOCK is missing from this checkout"
    fi
    if [ -z "$want_py" ] || [ "$python_version" != "$want_py" ]; then
        # forced: tflite-runtime's wheels stop at Python 3.11, and a lock must pin it (with numpy<2)
        FALLBACK=""
        case "$python_version" in
            3.8|3.9|3.10|3.11)
                if [ -z "$LOCK" ] || grep -q '^tflite-runtime==' "$LOCK"; then FALLBACK=tflite_runtime; fi ;;
        esac
    fi
    if [ ${#problems[@]} -eq 0 ]; then
        ok "$pretty $MACHINE, Python $python_version: dependencies from $lock_name"
        return
    fi
    if [ "$FORCE" = 0 ]; then
        printf 'install.sh: error: unsupported platform: %s\n' "${problems[@]}" >&2
        printf 'install.sh: supported: %s. --force installs anyway.\n' "$SUPPORTED" >&2
        exit 1
    fi
    say "note: unsupported platform, continuing (--force): $(IFS=';'; echo "${problems[*]}")"
    if [ -n "$LOCK" ]; then
        say "note: using $lock_name anyway; a pin without a wheel for this platform makes pip fail"
    else
        say "note: no lock file for this OS: installing setup.py's version ranges, unpinned"
    fi
}
# ==================================================================================================

apt_packages() {
    local pkgs=(python3-venv python3-dev python3-picamera2 portaudio19-dev i2c-tools) missing=() p
    if [ "$WITH_BROKER" = 1 ]; then
        pkgs+=(mosquitto mosquitto-clients)
    fi
    for p in "${pkgs[@]}"; do
        if installed_pkg "$p"; then
            continue
        elif [ "$DRY_RUN" = 1 ] || available_pkg "$p"; then
            missing+=("$p")
        else
            say "note: apt package $p is not available here (not Raspberry Pi OS?); skipped"
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        ok "apt packages installed (${pkgs[*]})"
        return
    fi
    act apt-get update
    act env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

service_user() {
    local g
    for g in "${GROUPS_NEEDED[@]}"; do
        if ! getent group "$g" >/dev/null; then
            act groupadd --system "$g"
        fi
    done
    if id -u "$SERVICE_USER" >/dev/null 2>&1; then
        ok "user $SERVICE_USER exists"
    else
        act useradd --system --user-group --home-dir /var/lib/emotiond --no-create-home \
            --shell /usr/sbin/nologin --comment "emotiond daemon" "$SERVICE_USER"
    fi
    local missing=()
    for g in "${GROUPS_NEEDED[@]}"; do
        if ! id -nG "$SERVICE_USER" 2>/dev/null | tr ' ' '\n' | grep -qx "$g"; then
            missing+=("$g")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        ok "user $SERVICE_USER is in groups ${GROUPS_NEEDED[*]}"
    else
        act usermod -a -G "$(IFS=,; echo "${missing[*]}")" "$SERVICE_USER"
    fi
}

python_venv() {
    if [ -x "$VENV/bin/python" ] && grep -q '^include-system-site-packages = true' "$VENV/pyvenv.cfg" 2>/dev/null; then
        ok "venv $VENV exists (with system site packages, so apt's picamera2 is visible)"
        return
    fi
    [ -x "$PYTHON" ] || die "no python at $PYTHON (install python3 or pass --python)"
    act "$PYTHON" -m venv --system-site-packages "$VENV"
}

python_package() {
    local digest spec="$SOURCE"
    digest=$(source_digest)
    if [ -x "$VENV/bin/emotiond" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$digest" ]; then
        ok "emotiond in $VENV is up to date with $SOURCE"
        return
    fi
    if [ -n "$EXTRAS" ]; then
        spec="${SOURCE}[${EXTRAS}]"
    fi
    # The lock as constraints: every package it names is installed at exactly its pin, and only
    # what emotiond and the extras need is installed (tflite-runtime only if the self-test needs it).
    local pins=()
    if [ -n "$LOCK" ]; then
        pins=(--constraint "$LOCK")
    fi
    act "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input "$spec" "${pins[@]}"
    if [ "$DRY_RUN" = 0 ]; then
        printf '%s\n' "$digest" >"$STAMP"
    fi
    SERVICE_STALE=1
}

# ==== choose_interpreter ===========================================================================
# Which TFLite interpreter this device can run. The self-test runs the shipped models on their
# recorded reference inputs in a child process (python -m emotiond.backend_probe, which survives a
# runtime that segfaults or hits an illegal instruction; `emotiond models` where the probe is
# missing). ai-edge-litert (from setup.py) is tried first; if it fails and this OS has a fallback
# (Bookworm: tflite-runtime, pinned by the lock with numpy<2 and an OpenCV built against numpy 1),
# that is installed and tested. On Trixie there is none: a failure stops the install with the reason.
# models.backend = "auto" then picks whichever passes at run time.
SELF_TEST_WHY=""
self_test() {  # $1: ai_edge_litert | tflite_runtime; the probe's verdict line in SELF_TEST_WHY
    local cfg=() out rc=0
    if [ -f "$ETC/config.toml" ]; then
        cfg=(-c "$ETC/config.toml")
    fi
    if "$VENV/bin/python" -c 'import emotiond.backend_probe' 2>/dev/null; then
        out=$("$VENV/bin/python" -m emotiond.backend_probe --backend "$1" 2>&1 >/dev/null) || rc=$?
    else
        out=$(EMOTIOND_MODELS__BACKEND="$1" "$VENV/bin/emotiond" "${cfg[@]}" models 2>&1 >/dev/null) || rc=$?
    fi
    SELF_TEST_WHY=$(printf '%s\n' "$out" | grep -m1 "^$1: " || printf '%s\n' "$out" | tail -n 1)
    return "$rc"
}

fallback_install() {  # the pip command that adds the fallback interpreter
    if [ -n "$LOCK" ]; then
        act "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
            --constraint "$LOCK" tflite-runtime
    else
        act "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
            tflite-runtime "numpy<2" "opencv-python-headless<4.11"
    fi
}

choose_interpreter() {
    local tried
    if [ "$DRY_RUN" = 1 ] && [ ! -x "$VENV/bin/emotiond" ]; then
        if [ "$FALLBACK" = tflite_runtime ]; then
            say "would: run the model self-test with ai-edge-litert; on failure install tflite-runtime${LOCK:+ (pinned by $(basename "$LOCK"))} and test it"
        else
            say "would: run the model self-test with ai-edge-litert; no fallback interpreter for this Python (tflite-runtime has no wheel for it): a failure stops the install"
        fi
        return
    fi
    if self_test ai_edge_litert; then
        ok "model self-test passes with ai-edge-litert"
        return
    fi
    tried="ai-edge-litert: ${SELF_TEST_WHY:-no output}"
    if [ "$FALLBACK" != tflite_runtime ]; then
        die "the model self-test failed with ai-edge-litert, the only interpreter for this Python (tflite-runtime has no wheel for it): tried $tried; details: $VENV/bin/python -m emotiond.backend_probe --all"
    fi
    if self_test tflite_runtime; then
        ok "model self-test passes with tflite-runtime (ai-edge-litert fails on this device: $tried)"
        return
    fi
    say "model self-test failed with ai-edge-litert ($tried); trying tflite-runtime"
    fallback_install
    if [ "$DRY_RUN" = 1 ]; then
        return
    fi
    if ! self_test tflite_runtime; then
        die "no TFLite interpreter passes the model self-test: tried $tried; tflite-runtime: ${SELF_TEST_WHY:-no output}; details: $VENV/bin/python -m emotiond.backend_probe --all"
    fi
    ok "model self-test passes with tflite-runtime"
    SERVICE_STALE=1
}
# ==================================================================================================

config_files() {
    if [ -f "$ETC/config.toml" ]; then
        ok "$ETC/config.toml exists (never overwritten; defaults: $SOURCE/config.toml)"
    else
        act install -D -m 0640 "$SOURCE/config.toml" "$ETC/config.toml"
        if [ "$DO_USER" = 1 ]; then
            act chgrp "$SERVICE_USER" "$ETC/config.toml"
        fi
    fi
    if [ -f "$ETC/mqtt_password" ]; then
        ok "$ETC/mqtt_password exists"
    else  # LoadCredential= needs the file; empty means "no password"
        act install -D -m 0600 /dev/null "$ETC/mqtt_password"
    fi
}

docs_file() {
    install_file "$SOURCE/docs/raspberry-pi.md" "$ROOT$PREFIX/docs/raspberry-pi.md" 0644 || true
}

# The shipped unit with /opt/emotiond replaced by --prefix.
unit_text() { sed "s#/opt/emotiond#$PREFIX#g" "$SOURCE/systemd/emotiond.service"; }
install_unit() { mkdir -p "$UNIT_DIR" && unit_text >"$UNIT" && chmod 0644 "$UNIT"; }

systemd_unit() {
    if [ -f "$UNIT" ] && [ "$(unit_text)" = "$(cat "$UNIT")" ]; then
        ok "$UNIT is up to date"
    else
        act install_unit "$SOURCE/systemd/emotiond.service" "$UNIT"
        SERVICE_STALE=1
        if [ -z "$ROOT" ]; then
            act systemctl daemon-reload
        fi
    fi
    if "${SYSTEMCTL[@]}" is-enabled --quiet emotiond 2>/dev/null; then
        ok "emotiond.service is enabled"
    else
        act "${SYSTEMCTL[@]}" enable emotiond.service
    fi
    if [ -n "$ROOT" ]; then
        return  # nothing runs inside an image root
    fi
    if ! systemctl is-active --quiet emotiond 2>/dev/null; then
        act systemctl start emotiond.service
    elif [ "$SERVICE_STALE" = 1 ]; then
        act systemctl restart emotiond.service
    else
        ok "emotiond.service is running"
    fi
}

uninstall() {
    if [ "$DO_SYSTEMD" = 1 ]; then
        if [ -z "$ROOT" ] && systemctl is-active --quiet emotiond 2>/dev/null; then
            act systemctl stop emotiond.service
        fi
        if "${SYSTEMCTL[@]}" is-enabled --quiet emotiond 2>/dev/null; then
            act "${SYSTEMCTL[@]}" disable emotiond.service
        fi
        if [ -f "$UNIT" ]; then
            act rm -f "$UNIT"
            if [ -z "$ROOT" ]; then
                act systemctl daemon-reload
            fi
        fi
    fi
    if [ -e "$ROOT$PREFIX" ]; then
        act rm -rf "$ROOT$PREFIX"
    fi
    if [ "$PURGE" = 1 ]; then
        if [ -e "$ETC" ]; then
            act rm -rf "$ETC"
        fi
        if [ -e "$ROOT/var/lib/emotiond" ]; then
            act rm -rf "$ROOT/var/lib/emotiond"
        fi
        if [ "$DO_USER" = 1 ] && id -u "$SERVICE_USER" >/dev/null 2>&1; then
            act userdel "$SERVICE_USER"
        fi
    elif [ -e "$ETC" ]; then
        ok "kept $ETC and /var/lib/emotiond (--purge removes them)"
    fi
}

main() {
    if [ "$DRY_RUN" = 1 ]; then
        say "dry run: nothing will be changed"
    fi
    check_platform
    if [ "$UNINSTALL" = 1 ]; then
        uninstall
    else
        if [ "$DO_APT" = 1 ]; then apt_packages; fi
        if [ "$DO_USER" = 1 ]; then service_user; fi
        python_venv
        python_package
        choose_interpreter
        config_files
        docs_file
        if [ "$DO_SYSTEMD" = 1 ]; then systemd_unit; fi
    fi
    if [ "$CHANGES" = 0 ]; then
        say "nothing to do: everything is already in place"
    elif [ "$DRY_RUN" = 1 ]; then
        say "dry run: $CHANGES action(s) would be taken"
    else
        say "done: $CHANGES action(s) taken"
    fi
}

main
