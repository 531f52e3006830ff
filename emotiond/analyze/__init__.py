"""Offline clip analysis (`emotiond analyze`): sentiment keyframes, four streams, fusion, report."""

from emotiond.analyze.video import ClipError, ClipMissing

__all__ = ["ClipError", "ClipMissing"]
