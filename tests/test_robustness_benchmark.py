"""benchmarks/robustness.py with labelled images of the user's own: accuracy is scored against the
folder labels, unlabelled images count for agreement only, unreadable files are skipped with a word."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from benchmarks import robustness as rb


def test_labelled_folders_are_scored_for_accuracy(astronaut, tmp_path, capsys) -> None:
    portrait = astronaut[0:300, 90:390]
    for folder in ("happy", "sad", "holiday"):  # the astronaut reads happy: "sad" is a wrong label
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "astronaut.png"), portrait)
    (tmp_path / "happy" / "notes.jpg").write_bytes(b"not an image")
    out = tmp_path / "result.json"
    assert rb.main(["--images", str(tmp_path), "--json", str(out)]) == 0
    printed = capsys.readouterr()
    assert "notes.jpg" in printed.err and "accuracy against the folder labels (2 labelled images)" in printed.out
    result = json.loads(out.read_text())
    clean = result["clean"]
    assert clean["frames"] == 3 and clean["face_found"] == 3 and clean["labels"] == {"happy": 3}
    assert (clean["labelled"], clean["accuracy"], clean["wrong"], clean["refused"], clean["missed"]) == (2, 0.5, 0.5, 0, 0)
    mirror = result["mirror"]
    assert mirror["labelled"] == 2
    assert mirror["accuracy"] + mirror["refused"] + mirror["wrong"] + mirror["missed"] == pytest.approx(1.0)
    assert mirror["agreement"] == 1.0  # the mirrored astronaut is still happy, in all three folders


def test_a_tight_small_crop_is_enlarged_so_its_face_can_be_found(astronaut, tmp_path) -> None:
    (tmp_path / "happy").mkdir()
    small = cv2.resize(astronaut[20:220, 140:340], (48, 48), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / "happy" / "tight.png"), small)
    ((truth_subject, frame, truth),) = rb.folder_frames(tmp_path, ("happy", "sad"))
    assert truth == truth_subject == "happy" and frame.shape == (480, 640, 3)
    assert np.count_nonzero(np.any(frame != 100, axis=2)) >= 200 * 200  # enlarged, not a 48 px speck


def test_images_must_be_a_directory(tmp_path) -> None:
    with pytest.raises(SystemExit) as exit_:
        rb.main(["--images", str(tmp_path / "missing")])
    assert exit_.value.code == 2


def test_known_box_reads_every_perturbed_face_from_where_the_clean_one_moved(astronaut, tmp_path) -> None:
    (tmp_path / "happy").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "astronaut.png"), astronaut[0:300, 90:390])
    out = tmp_path / "known.json"
    assert rb.main(["--images", str(tmp_path), "--known-box", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for name in rb.PERTURBATIONS:
        assert result[name]["face_found"] == 1.0, name  # no detector: even the darkest view is "found"
        assert 0.0 <= result[name]["drift"] <= 1.0 and result[name]["top_agreement"] in (0.0, 1.0)
    assert result["mirror"]["top_agreement"] == 1.0 and result["mirror"]["drift"] < 0.05


def test_the_roll_line_shows_the_zoomed_roll_steadier_than_the_whole_frame_one(astronaut, default_config) -> None:
    spread = rb.roll_spread(default_config, astronaut)
    assert spread is not None and len(spread["whole frame"]) == len(spread["zoomed"]) == 10
    whole, zoomed = spread["whole frame"], spread["zoomed"]
    assert max(zoomed) - min(zoomed) < (max(whole) - min(whole)) / 4


def test_the_sweep_grades_light_noise_and_blur(astronaut, tmp_path, capsys) -> None:
    (tmp_path / "happy").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "astronaut.png"), astronaut[0:300, 90:390])
    out = tmp_path / "sweep.json"
    assert rb.main(["--images", str(tmp_path), "--sweep", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == {*rb.SWEEP, "clean"} and "mirror" not in result
    for name in ("light 0.6", "light 0.4 + 1 px blur", "light 0.25 + 1 px blur", "blur 1 px"):
        assert result[name]["face_found"] == 1.0 and result[name]["agreement"] == 1.0, name  # read, not refused
    assert result["blur 3 px"]["quality_flagged"] == 1.0  # too soft to read: refused with its reason
    assert "light 0.15 + noise" in capsys.readouterr().out
