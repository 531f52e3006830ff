"""Sample-rate conversion: scipy's polyphase resampler with a Kaiser-windowed FIR low-pass.

``scipy.signal.resample_poly`` upsamples by ``up``, filters and downsamples by ``down`` in one
polyphase pass; its filter's cut-off is the lower of the two Nyquist frequencies, so it doubles as
the anti-alias low-pass. A Kaiser beta of 8.6 (about -80 dB stop band, scipy's default is 5.0) keeps
tones the new rate cannot hold out of the result. Rates are reduced to the ratio ``up / down``:
exact for integer rates (every rate a sound card or WAV file uses), within 0.1 % otherwise.

scipy is imported on first use, not with this module: ``import scipy.signal`` takes about 1.4 s
(measured on the 2-core build machine under load, against 0.05 s for the whole audio pipeline
without it), which the daemon must not spend before its first frame. ``load_scipy`` lets the audio
worker pay it in the background at start instead of on the first clip.
"""

from __future__ import annotations

from fractions import Fraction
from math import gcd

import numpy as np

KAISER_BETA = 8.6  # ~ -80 dB side lobes


def load_scipy() -> None:
    """Import the scipy modules the audio features use (slow the first time, free afterwards)."""
    import scipy.fft  # noqa: F401
    import scipy.signal  # noqa: F401


def rate_ratio(sr_in: float, sr_out: float) -> tuple[int, int]:
    """(up, down) with ``sr_out / sr_in == up / down`` (exact for integer rates)."""
    if float(sr_in).is_integer() and float(sr_out).is_integer():
        g = gcd(int(sr_in), int(sr_out))
        return int(sr_out) // g, int(sr_in) // g
    ratio = Fraction(sr_out / sr_in).limit_denominator(1000)
    return ratio.numerator, ratio.denominator


def resample(x: np.ndarray, sr_in: float, sr_out: float) -> np.ndarray:
    """Resample a 1-D signal from ``sr_in`` to ``sr_out`` Hz; returns float64 (a copy if equal)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"resample expects mono 1-D samples, got shape {x.shape}")
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    if sr_in == sr_out or len(x) == 0:
        return x.copy()
    from scipy.signal import resample_poly  # see the module docstring: slow to import, so not at start

    up, down = rate_ratio(sr_in, sr_out)
    return np.asarray(resample_poly(x, up, down, window=("kaiser", KAISER_BETA)), dtype=np.float64)
