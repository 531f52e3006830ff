"""Every config validation path: unknown keys, wrong types, out-of-range values, bad files, env overrides."""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path

import pytest
from emotiond.cli import main
from emotiond.config import Config, ConfigError, apply_env_overrides, config_from_mapping, load_config
from emotiond.exitcodes import EX_CONFIG


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_shipped_config_is_the_documented_default(repo_root: Path) -> None:
    data = tomllib.loads((repo_root / "config.toml").read_text())
    shipped = config_from_mapping(data, "config.toml")
    assert shipped == Config(), "config.toml values must equal the dataclass defaults"
    # Every key of every section is present in the shipped file, and nothing else.
    for name, section_type in typing.get_type_hints(Config).items():
        expected = {f.name for f in dataclasses.fields(section_type)}
        assert set(data[name]) == expected, name


def test_shipped_config_documents_every_key(repo_root: Path) -> None:
    lines = (repo_root / "config.toml").read_text().splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#") and not line.startswith("["):
            assert lines[i - 1].lstrip().startswith("#") or "=" in lines[i - 1], f"undocumented key: {line}"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[faces]\ndetectr = 'x'\n", "unknown key 'faces.detectr'"),
        ("[nosuch]\nx = 1\n", "unknown key 'nosuch'"),
        ("[faces]\ndetect_every = 'five'\n", "key 'faces.detect_every': expected an integer, got 'five'"),
        ("[faces]\ndetect_every = true\n", "key 'faces.detect_every': expected an integer"),
        ("[faces]\ndetect_every = 2.5\n", "key 'faces.detect_every': expected an integer"),
        ("[faces]\nmin_score = 1.5\n", "key 'faces.min_score': expected a value from 0.0 to 1.0, got 1.5"),
        ("[faces]\nhold_frames = -1\n", "key 'faces.hold_frames': expected a value from 0"),
        ("[faces]\ndetector = 'yolo'\n", "key 'faces.detector': expected one of 'blazeface', 'blazeface_full', 'haar'"),
        ("[camera]\nloop = 'yes'\n", "key 'camera.loop': expected true or false"),
        ("[camera]\nsource = 0\n", "key 'camera.source': expected a string, got 0"),
        ("faces = 3\n", "key 'faces': expected a [faces] table"),
        ("[models]\nbackend = 'onnx'\n", "key 'models.backend': expected one of"),
        ("[expression]\nsmoothing = 'median'\n", "key 'expression.smoothing'"),
    ],
)
def test_validation_errors_name_file_key_and_expectation(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert fragment in message
    assert "\n" not in message


def test_float_fields_accept_integers(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[camera]\nfps = 25\n"), environ={})
    assert config.camera.fps == 25.0 and isinstance(config.camera.fps, float)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[faces\n"), environ={})
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml", environ={})


def test_env_overrides_single_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "[faces]\ndetect_every = 3\n")
    env = {"EMOTIOND_FACES__DETECT_EVERY": "7", "EMOTIOND_CAMERA__SOURCE": "/dev/shm/x.mp4", "HOME": "/root"}
    config = load_config(path, environ=env)
    assert config.faces.detect_every == 7
    assert config.camera.source == "/dev/shm/x.mp4"
    assert apply_env_overrides({}, {"EMOTIOND_CAMERA__LOOP": "true"}) == {"camera": {"loop": True}}


def test_env_override_is_validated_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="faces.detect_every"):
        load_config(write(tmp_path, ""), environ={"EMOTIOND_FACES__DETECT_EVERY": "0"})
    with pytest.raises(ConfigError, match="unknown key 'faces.nope'"):
        load_config(write(tmp_path, ""), environ={"EMOTIOND_FACES__NOPE": "1"})


def test_cli_exits_78_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[faces]\nmin_score = 7\n")
    assert main(["-c", str(path), "check-config"]) == EX_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("emotiond: error:") and "faces.min_score" in err[-1]
    assert not any("Traceback" in line for line in err)


def test_cli_check_config_ok(repo_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(repo_root / "config.toml"), "check-config"]) == 0
    assert ": ok" in capsys.readouterr().out


def test_crop_scales_are_checked(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "[expression]\ncrop_scales = [1.0]\n"), environ={}).expression.crop_scales == (1.0,)
    with pytest.raises(ConfigError, match="crop_scales: give 1 to 5 sizes"):
        load_config(write(tmp_path, "[expression]\ncrop_scales = []\n"), environ={})
    with pytest.raises(ConfigError, match="expression.crop_scales"):
        load_config(write(tmp_path, "[expression]\ncrop_scales = [1.0, 3.0]\n"), environ={})
    with pytest.raises(ConfigError, match="expression.crop_scales"):
        load_config(write(tmp_path, "[expression]\ncrop_scales = 1.0\n"), environ={})
