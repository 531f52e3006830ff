"""Bad values (issue 12): nan/inf floats, empty required strings, binary files; properties over all keys."""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from pathlib import Path
from typing import Any

import pytest
from emotiond.cli import main
from emotiond.config import Config, ConfigError, config_from_mapping, load_config
from emotiond.exitcodes import EX_CONFIG
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def keys_of(tp: type) -> list[tuple[str, str, dataclasses.Field[Any]]]:
    """(section, key, field) for every key of type ``tp`` in the whole config."""
    found = []
    for section, section_type in typing.get_type_hints(Config).items():
        hints = typing.get_type_hints(section_type)
        for f in dataclasses.fields(section_type):
            if hints[f.name] is tp:
                found.append((section, f.name, f))
    return found


FLOAT_KEYS = keys_of(float)
STR_KEYS = keys_of(str)
REQUIRED_KEYS = [(s, k, f) for s, k, f in STR_KEYS if f.metadata.get("required")]


def test_every_float_key_is_covered() -> None:
    assert len(FLOAT_KEYS) >= 9  # the issue found 9 keys that accepted nan
    assert ("faces", "min_score") in {(s, k) for s, k, _ in FLOAT_KEYS}


@pytest.mark.parametrize("section, key", [(s, k) for s, k, _ in FLOAT_KEYS])
@pytest.mark.parametrize("literal", ["nan", "inf", "-inf", "+nan"])
def test_non_finite_floats_are_rejected_in_the_file(tmp_path: Path, section: str, key: str, literal: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[{section}]\n{key} = {literal}\n")
    with pytest.raises(ConfigError, match=rf"key '{section}\.{key}': expected a finite number"):
        load_config(path, environ={})


@pytest.mark.parametrize("section, key", [(s, k) for s, k, _ in FLOAT_KEYS])
def test_non_finite_floats_are_rejected_from_the_environment(section: str, key: str) -> None:
    env = {f"EMOTIOND_{section.upper()}__{key.upper()}": "nan"}
    with pytest.raises(ConfigError, match=rf"EMOTIOND_\* overrides: key '{section}\.{key}': expected a finite"):
        load_config(None, environ=env)


@pytest.mark.parametrize("section, key", [(s, k) for s, k, _ in REQUIRED_KEYS])
@pytest.mark.parametrize("value", ["", "   ", "\t"])
def test_required_strings_must_not_be_empty(section: str, key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"key '{section}\.{key}': must not be empty"):
        config_from_mapping({section: {key: value}}, "c.toml")


def test_required_keys_include_the_ones_the_issue_names() -> None:
    names = {f"{s}.{k}" for s, k, _ in REQUIRED_KEYS}
    assert {"models.expression", "models.face_detector", "camera.source", "audio.source"} <= names


def test_mqtt_host_is_required_only_when_mqtt_is_on() -> None:
    assert config_from_mapping({"mqtt": {"host": ""}}).mqtt.host == ""
    with pytest.raises(ConfigError, match="key 'mqtt.host' must not be empty when MQTT is enabled"):
        config_from_mapping({"mqtt": {"enabled": True, "host": ""}})
    with pytest.raises(ConfigError, match="mqtt.host' must not be empty"):
        load_config(None, environ={"EMOTIOND_MQTT__ENABLED": "true", "EMOTIOND_MQTT__HOST": '""'})


def test_nul_in_a_string_is_rejected() -> None:
    with pytest.raises(ConfigError, match="key 'mqtt.spool_file': NUL characters are not allowed"):
        config_from_mapping({"mqtt": {"spool_file": "/var/lib/x\0y"}})


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x01binary", b"[faces]\nmin_score = 0.5 # caf\xe9\n", b"\x89PNG\r\n\x1a\n"])
def test_non_utf8_files_are_a_config_error(tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(path, environ={})
    assert main(["-c", str(path), "check-config"]) == EX_CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not UTF-8 text" in err and "Traceback" not in err


def test_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path, environ={})


def test_cli_exit_78_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[models]\nexpression = ""\n')
    assert main(["-c", str(path), "check-config"]) == EX_CONFIG
    assert "key 'models.expression': must not be empty" in capsys.readouterr().err


# --- properties ------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FLOAT_KEYS), st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_is_accepted_only_if_finite_and_in_range(key: tuple[str, str, Any], value: float) -> None:
    section, name, f = key
    try:
        config = config_from_mapping({section: {name: value}}, "c.toml")
    except ConfigError as exc:
        assert f"{section}.{name}" in str(exc) or f"{section}:" in str(exc)  # cross-key checks name the section
        return
    got = getattr(getattr(config, section), name)
    assert math.isfinite(got)
    lo, hi = f.metadata.get("range", (None, None))
    assert (lo is None or got >= lo) and (hi is None or got <= hi)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(STR_KEYS), st.text(max_size=40))
def test_any_string_is_accepted_or_rejected_with_its_key(key: tuple[str, str, Any], value: str) -> None:
    section, name, f = key
    try:
        config = config_from_mapping({section: {name: value}}, "c.toml")
    except ConfigError as exc:
        assert str(exc).count("\n") == 0
        assert f"{section}.{name}" in str(exc) or f"{section}:" in str(exc)
        return
    assert "\0" not in value
    if f.metadata.get("required"):
        assert value.strip()
    assert getattr(getattr(config, section), name) == value


toml_scalars = st.one_of(
    st.floats(), st.integers(min_value=-(10**30), max_value=10**30), st.booleans(), st.text(max_size=20),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(FLOAT_KEYS + STR_KEYS), toml_scalars)
def test_env_overrides_never_raise_anything_but_config_error(key: tuple[str, str, Any], value: Any) -> None:
    section, name, _ = key
    raw = value if isinstance(value, str) else json.dumps(value).replace("NaN", "nan").replace("Infinity", "inf")
    try:
        load_config(None, environ={f"EMOTIOND_{section.upper()}__{name.upper()}": raw})
    except ConfigError as exc:
        assert str(exc).count("\n") == 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_as_a_config_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(content)
    try:
        load_config(path, environ={})
    except ConfigError as exc:
        assert str(exc).startswith(str(path))
