"""emotiond: a headless emotion-recognition daemon for Raspberry Pi-class devices."""

import os

# numpy's BLAS starts a thread per core; the audio path's small matrix products then compete with
# the camera thread (measured: 2 s clip to result p50 116-252 ms with default threads, 51-94 ms with
# one, on 2 busy cores; see benchmarks/RESULTS.md). Must be set before numpy is first imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# emotiond reports camera problems in its own words; OpenCV's C++ warnings would repeat them raw.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

__version__ = "0.1.0"
