"""Spike detection on a chip node's voltage trace.

Below threshold the chip is a linear L–R network, so its response to an input waveform scales
with the amplitude. A spike is what the linear response does not explain: the trace minus a
sub-threshold reference trace scaled to the same amplitude. With no input (DC-driven firing)
the reference is zero and the excess is the trace itself.
"""

from __future__ import annotations

import numpy as np


def linear_excess_v(voltage_v: np.ndarray, reference_v: np.ndarray | None, scale: float) -> np.ndarray:
    """voltage − scale·reference (the part a linear response cannot explain)."""
    voltage_v = np.asarray(voltage_v, dtype=float)
    if reference_v is None:
        return voltage_v
    return voltage_v - scale * np.asarray(reference_v, dtype=float)


def in_window(time_s: np.ndarray, window_s: tuple[float, float]) -> np.ndarray:
    """Boolean mask of samples with window_s[0] <= t <= window_s[1]."""
    time_s = np.asarray(time_s, dtype=float)
    return (time_s >= window_s[0]) & (time_s <= window_s[1])


def peak_in_window_v(time_s: np.ndarray, voltage_v: np.ndarray, window_s: tuple[float, float]) -> float:
    """Largest value inside the window (−inf when the window holds no sample)."""
    mask = in_window(time_s, window_s)
    return float(np.max(np.asarray(voltage_v)[mask])) if mask.any() else -np.inf


def has_spike(time_s: np.ndarray, excess_v: np.ndarray, threshold_v: float,
              window_s: tuple[float, float]) -> bool:
    """True when the excess voltage exceeds threshold_v somewhere in the window."""
    return peak_in_window_v(time_s, excess_v, window_s) > threshold_v


def rising_crossings(values: np.ndarray, level: float, hysteresis: float) -> np.ndarray:
    """Indices where `values` rises above `level` after having been below `level − hysteresis`.

    The hysteresis keeps noise on a spike's flank from counting it twice. A record that starts
    above the level does not count its first spike (it began before the record)."""
    values = np.asarray(values, dtype=float)
    low = level - abs(hysteresis)
    above = values > level
    # The samples above or below the band, in order: a crossing is one above whose predecessor
    # among them is below (vectorised: records reach 10^7 samples).
    events = np.flatnonzero(above | (values < low))
    rising = above[events[1:]] & ~above[events[:-1]]
    return events[1:][rising].astype(int)


def spike_times_s(time_s: np.ndarray, voltage_v: np.ndarray, threshold_v: float,
                  hysteresis_v: float | None = None) -> np.ndarray:
    """Times of spikes: rising crossings of threshold_v, linearly interpolated between samples."""
    time_s = np.asarray(time_s, dtype=float)
    voltage_v = np.asarray(voltage_v, dtype=float)
    hysteresis_v = 0.5 * threshold_v if hysteresis_v is None else hysteresis_v
    indices = rising_crossings(voltage_v, threshold_v, hysteresis_v)
    indices = indices[indices > 0]
    before, after = voltage_v[indices - 1], voltage_v[indices]
    fraction = (threshold_v - before) / np.where(after > before, after - before, 1.0)
    return time_s[indices - 1] + np.clip(fraction, 0.0, 1.0) * (time_s[indices] - time_s[indices - 1])


def firing_rate_hz(spike_count: int, duration_s: float) -> float:
    """Spikes per second over a record (NaN for an empty record)."""
    return spike_count / duration_s if duration_s > 0 else float("nan")


def delayed(time_s: np.ndarray, values: np.ndarray, delay_s: float) -> np.ndarray:
    """values(t − delay) on the same time axis, zero before the record began: a linear
    response to a copy of the input delayed by delay_s (superposition)."""
    time_s = np.asarray(time_s, dtype=float)
    return np.interp(time_s - delay_s, time_s, np.asarray(values, dtype=float), left=0.0)
