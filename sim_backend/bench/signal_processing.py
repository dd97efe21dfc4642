"""What happens to a signal between the chip and the scope's memory: gain, bandwidth, noise,
trigger, sampling. Pure numpy/numba functions on uniformly sampled arrays."""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _one_pole(signal: np.ndarray, alpha: float) -> np.ndarray:
    out = np.empty_like(signal)
    state = signal[0]
    for k in range(signal.size):
        state += alpha * (signal[k] - state)
        out[k] = state
    return out


def low_pass(signal: np.ndarray, sample_interval_s: float, bandwidth_hz: float) -> np.ndarray:
    """Two cascaded one-pole sections, each at bandwidth·1.554 so the pair is -3 dB at bandwidth.

    Two poles give a realistic, overshoot-free step response (10-90 % rise ≈ 0.34/bandwidth)
    for an amplifier chain plus scope front end. The filter starts settled on the first sample.
    """
    if not math.isfinite(bandwidth_hz) or bandwidth_hz <= 0:
        return signal.copy()
    pole_hz = bandwidth_hz * 1.5537739740300374   # 1/sqrt(sqrt(2) - 1)
    alpha = 1.0 - math.exp(-2.0 * math.pi * pole_hz * sample_interval_s)
    signal = np.ascontiguousarray(signal, dtype=np.float64)
    return _one_pole(_one_pole(signal, alpha), alpha)


def first_crossing_index(signal: np.ndarray, level: float, rising: bool, start_index: int = 0) -> int | None:
    """Index of the first sample at or after start_index where the signal crosses `level`."""
    tail = signal[start_index:]
    above = tail >= level if rising else tail <= level
    crossings = np.flatnonzero(above[1:] & ~above[:-1])
    return None if crossings.size == 0 else int(start_index + crossings[0] + 1)


def crossing_time_s(time_s: np.ndarray, signal: np.ndarray, index: int, level: float) -> float:
    """Interpolated time at which the signal passes `level` between index-1 and index."""
    v0, v1 = signal[index - 1], signal[index]
    fraction = 0.0 if v1 == v0 else (level - v0) / (v1 - v0)
    return float(time_s[index - 1] + fraction * (time_s[index] - time_s[index - 1]))
