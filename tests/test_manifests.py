"""Manifest validation (issue 12): wrong types and label counts are one ModelError naming file and field,
refused alike by `emotiond models` and `run` (exit 69)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from emotiond.cli import main
from emotiond.models import Manifest, ModelError, TFLiteModel, validate_manifest
from hypothesis import given, settings
from hypothesis import strategies as st

EX_UNAVAILABLE = 69


@pytest.fixture()
def models_dir(tmp_path: Path, repo_root: Path) -> Path:
    mdir = tmp_path / "models"
    mdir.mkdir()
    for f in (repo_root / "models").iterdir():
        (mdir / f.name).symlink_to(f) if f.suffix != ".json" else shutil.copy(f, mdir / f.name)
    return mdir


def edit(mdir: Path, model: str, changes: dict[str, Any]) -> Path:
    path = mdir / f"{model}.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
    return path


def config_for(tmp_path: Path, mdir: Path, repo_root: Path) -> str:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[models]\ndir = "{mdir}"\n[camera]\nsource = "{repo_root / "samples" / "demo.mp4"}"\n'
                   "[output]\nstdout = false\n[audio]\nenabled = false\n")
    return str(cfg)


@pytest.mark.parametrize("changes, fragment", [
    ({"labels": 5}, "field 'labels': expected a list of non-empty strings, got 5"),
    ({"labels": "angry"}, "field 'labels': expected a list of non-empty strings, got \"angry\""),
    ({"labels": ["a", ""]}, "field 'labels': expected a list of non-empty strings"),
    ({"labels": ["a", "a", "b", "c", "d", "e", "f"]}, "field 'labels': expected distinct labels"),
    ({"labels": ["angry", "sad", "happy"]}, "field 'labels': 3 labels but 'output.shape' [1, 7] has 7 classes"),
    ({"file": 7}, "field 'file': expected a non-empty string, got 7"),
    ({"name": ""}, "field 'name': expected a non-empty string"),
    ({"input": [1, 2]}, "field 'input': expected an object"),
    ({"input": {"shape": [1, "64", 64, 1]}}, "field 'input.shape': expected a list of positive integers"),
    ({"input": {"range": [1.0, -1.0]}}, "field 'input.range': expected [low, high] with finite low < high"),
    ({"thresholds": {"min_score": True}}, "field 'thresholds.min_score': expected a finite number"),
])
def test_bad_manifest_fields_are_named(models_dir: Path, changes: dict[str, Any], fragment: str) -> None:
    path = edit(models_dir, "expression", changes)
    with pytest.raises(ModelError) as err:
        Manifest.load(path)
    assert str(err.value).startswith(f"{path}: ") and fragment in str(err.value)


def test_label_count_is_checked_against_the_real_model(models_dir: Path) -> None:
    data = json.loads((models_dir / "expression.json").read_text())
    del data["output"]  # nothing in the header to compare with: the interpreter's output decides
    data["labels"] = ["angry", "sad", "happy"]
    path = models_dir / "expression.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"field 'labels': 3 labels but the model expression.tflite outputs 7 classes"):
        TFLiteModel(Manifest.load(path))


@pytest.mark.parametrize("content", [b"\xff\xfe binary", b"{" * 100000, b"[1, 2]", b""])
def test_unparseable_manifests_are_model_errors(models_dir: Path, content: bytes) -> None:
    path = models_dir / "expression.json"
    path.write_bytes(content)
    with pytest.raises(ModelError) as err:
        Manifest.load(path)
    assert "\n" not in str(err.value)


def test_models_and_run_refuse_the_same_manifest(tmp_path: Path, models_dir: Path, repo_root: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    edit(models_dir, "expression", {"labels": ["angry", "sad", "happy"]})
    cfg = config_for(tmp_path, models_dir, repo_root)
    assert main(["-c", cfg, "models"]) == EX_UNAVAILABLE
    out = capsys.readouterr().out
    assert "expression: ERROR" in out and "3 labels" in out and "face_detector " in out  # the others still listed
    assert main(["-c", cfg, "run", "--max-frames", "1"]) == EX_UNAVAILABLE
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("emotiond: error: ") and "expression.json: field 'labels'" in err[-1]


def test_models_no_longer_skips_an_unparseable_manifest(tmp_path: Path, models_dir: Path, repo_root: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    (models_dir / "expression.json").write_text("{not json")
    assert main(["-c", config_for(tmp_path, models_dir, repo_root), "models", "--json"]) == EX_UNAVAILABLE
    infos = {i["name"]: i for i in map(json.loads, capsys.readouterr().out.splitlines())}
    assert "not valid JSON" in infos["expression"]["error"] and "self_test" in infos["face_detector"]


# --- properties over manifest headers ------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
FIELDS = ["name", "task", "file", "labels", "input", "output", "preprocessing", "thresholds"]


@pytest.fixture(scope="module")
def good_header(repo_root_module: Path) -> dict[str, Any]:
    return json.loads((repo_root_module / "models" / "expression.json").read_text())


@pytest.fixture(scope="module")
def repo_root_module() -> Path:
    return Path(__file__).resolve().parent.parent


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS + ["input.shape", "input.range", "output.shape"]), json_values,
                       max_size=4))
def test_any_header_is_valid_or_one_named_error(good_header: dict[str, Any], changes: dict[str, Any]) -> None:
    data = copy.deepcopy(good_header)
    for key, value in changes.items():
        if "." in key:
            section, sub = key.split(".")
            if isinstance(data.get(section), dict):
                data[section][sub] = value
        else:
            data[key] = value
    path = Path("/m/expression.json")
    try:
        validate_manifest(data, path)
    except ModelError as exc:
        msg = str(exc)
        assert msg.startswith(f"{path}: ") and "\n" not in msg
        return
    # Accepted: everything the pipeline relies on has the right type.
    assert all(isinstance(data[k], str) and data[k].strip() for k in ("name", "task", "file"))
    labels = data.get("labels", [])
    assert isinstance(labels, list) and all(isinstance(x, str) and x for x in labels)
    shape = data.get("output", {}).get("shape")
    if labels and shape:
        assert shape[-1] == len(labels)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=8), max_size=10))
def test_labels_are_used_only_when_they_match_the_output(good_header: dict[str, Any], labels: list[str]) -> None:
    data = {**good_header, "labels": labels}
    try:
        validate_manifest(data, Path("/m/x.json"))
    except ModelError:
        assert len(labels) != 7 or len(set(labels)) != 7 or not all(x.strip() for x in labels)
    else:
        assert labels == [] or (len(labels) == 7 and len(set(labels)) == 7)
