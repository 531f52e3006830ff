"""The face models as the config names them: detector + expression classifier, built in one place.

``emotiond run`` (through ``FacePipeline``), ``emotiond classify`` (the same pipeline, one still at a
time) and ``emotiond analyze`` (its own score threshold, face limit and tiling) all start here.
"""

from __future__ import annotations

from dataclasses import dataclass

from emotiond.config import Config
from emotiond.perception.expression import ExpressionClassifier
from emotiond.perception.face_detect import FaceDetector, make_detector


@dataclass(frozen=True)
class FaceModels:
    detector: FaceDetector
    classifier: ExpressionClassifier


def build_face_models(config: Config, *, min_score: float | None = None, max_faces: int | None = None) -> FaceModels:
    """The configured detector and expression classifier; ``min_score``/``max_faces`` override
    ``[faces]`` (the offline analysis uses its own). Raises ModelError for a missing or broken model."""
    mdir, m = config.models_dir, config.models
    detector = make_detector(
        config.faces.detector,
        mdir / m.face_detector,
        min_score=config.faces.min_score if min_score is None else min_score,
        max_faces=config.faces.max_faces if max_faces is None else max_faces,
        min_face_px=config.faces.min_face_px,
        backend=m.backend,
        num_threads=m.num_threads,
        full_manifest_path=mdir / m.face_detector_full,
    )
    e = config.expression
    classifier = ExpressionClassifier.from_manifest(mdir / m.expression, m.backend, m.num_threads,
                                                    e.face_margin, e.mirror_average, e.crop_scales)
    return FaceModels(detector, classifier)
