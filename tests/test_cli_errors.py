"""The CLI's last resort (issue 12): an unexpected exception is one line and exit 70, never a traceback."""

from __future__ import annotations

import argparse

import pytest
from emotiond import cli
from emotiond.sources.microphone import MicrophoneError


def boom(exc: BaseException):
    def command(_args: argparse.Namespace) -> int:
        raise exc
    return command


@pytest.mark.parametrize("exc", [KeyError("x"), TypeError("unsupported operand\nsecond line"), RecursionError(),
                                 ValueError("buffer size must be a multiple of element size")])
def test_unexpected_exceptions_are_one_line_and_exit_70(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str], exc: Exception) -> None:
    monkeypatch.setattr(cli, "cmd_check_config", boom(exc))
    assert cli.main(["check-config"]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"emotiond: error: unexpected {type(exc).__name__}")


def test_the_traceback_is_logged_at_debug_level(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(cli, "cmd_check_config", boom(KeyError("x")))
    with caplog.at_level("DEBUG", logger="emotiond"):
        assert cli.main(["--log-level", "debug", "check-config"]) == 70
    assert any(r.exc_info for r in caplog.records)


def test_expected_failures_keep_their_status(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "cmd_check_config", boom(MicrophoneError("x.wav: truncated WAV")))
    assert cli.main(["check-config"]) == 65
    assert capsys.readouterr().err == "emotiond: error: x.wav: truncated WAV\n"
    monkeypatch.setattr(cli, "cmd_check_config", boom(KeyboardInterrupt()))
    assert cli.main(["check-config"]) == 130
