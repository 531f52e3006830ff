"""Global options before or after the subcommand, and every `emotiond` command shown in README.md."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from emotiond.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
# Shown in README but not run here: they need a camera, a running daemon, or minutes (tested elsewhere).
PARSE_ONLY = {
    "run": "opens the camera (run on a folder of images below)",
    "trigger": "needs a running daemon (test_triggers)",
    "devices": "probes hardware (test_devices)",
    "bench": "takes minutes (test_bench)",
    "analyze": "takes minutes (test_analyze_clip)",
    "demo": "covered by test_cli",
}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emotiond", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("argv", [
    ["run", "-c", "F"], ["-c", "F", "run"], ["run", "--config", "F"], ["--config=F", "run"],
    ["-c", "OTHER", "run", "-c", "F"],  # the later one wins, as people expect
])
def test_config_before_or_after_the_subcommand(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.command, args.config) == ("run", "F")


def test_defaults_and_log_level_anywhere() -> None:
    parser = build_parser()
    assert (parser.parse_args(["run"]).config, parser.parse_args(["run"]).log_level) == (None, None)
    assert parser.parse_args(["--log-level", "error", "models"]).log_level == "error"
    assert parser.parse_args(["models", "--log-level", "error"]).log_level == "error"
    assert parser.parse_args(["models", "-v"]).log_level == "debug"
    assert parser.parse_args(["-v", "classify-audio", "x.wav"]).log_level == "debug"  # cli_audio's subcommands too


def test_check_config_is_the_same_with_the_option_anywhere(tmp_path: Path) -> None:
    cfg = tmp_path / "mine.toml"
    cfg.write_text('[device]\nid = "kitchen"\n')
    outputs = {tuple(argv): _run(*argv) for argv in (
        ["check-config", "--config", str(cfg)], ["check-config", "-c", str(cfg)], ["-c", str(cfg), "check-config"])}
    for argv, proc in outputs.items():
        assert proc.returncode == 0, (argv, proc.stderr)
        assert proc.stdout == f"{cfg}: ok (device kitchen, camera '0', detector blazeface)\n"


def test_run_takes_the_config_after_the_subcommand(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(REPO / "samples" / "astronaut.jpg", frames / "face.jpg")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[camera]\nsource = "{frames}"\n[output]\nstdout = true\n'
                   '[audio]\nenabled = false\n[triggers]\ncontrol_socket = false\n')
    for argv in (["run", "-c", str(cfg), "--max-frames", "12"], ["-c", str(cfg), "run", "--max-frames", "12"]):
        proc = _run(*argv)
        assert proc.returncode == 0, proc.stderr
        assert '"type": "emotion"' in proc.stdout or '"type":"emotion"' in proc.stdout


def readme_commands() -> list[list[str]]:
    """Every `emotiond ...` line inside README.md's code blocks, without its comment."""
    text = (REPO / "README.md").read_text()
    commands = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            words = shlex.split(line) if line else []
            if words and Path(words[0]).name == "emotiond":
                commands.append(words[1:])
    return commands


def test_readme_shows_commands() -> None:
    assert len(readme_commands()) >= 8  # the extraction itself works


@pytest.mark.parametrize("argv", readme_commands(), ids=lambda a: " ".join(a))
def test_every_readme_command_parses_and_runs_without_hardware(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)  # SystemExit (exit 2) if README drifted from the CLI
    if args.command in PARSE_ONLY:
        return
    missing = [a for a in argv[1:] if not a.startswith("-") and "." in a and not (REPO / a).exists()]
    proc = _run(*argv)
    if missing:  # an example of the user's own file (photo2.jpg): a one-line error for it, no traceback
        assert "Traceback" not in proc.stderr and all(m in proc.stdout + proc.stderr for m in missing)
    else:
        assert proc.returncode == 0, proc.stderr
