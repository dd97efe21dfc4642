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


# -- what a capture at a spiking amplitude holds ----------------------------------------------
# The main wire's spikes show at the output node (m); the control wire's switchings at the bias
# node (c). On the default neuron each spike makes the control wire switch once (it resets the
# loop's flux, ~1-2 ns after the spike). Each reset leaves a little current circulating in the
# loop; over ~15 spikes it builds up until the control wire switches a second time, 10-20 ns
# after the spike, with no spike on m: a control-wire afterpulse that releases the loop's
# circulating current (~5.5 aJ more than the capture's spike alone). The reverse also happens
# (the control wire does not switch after a spike: the loop keeps the spike's flux, and the
# capture takes ~5 aJ less), and near threshold the control wire may switch with no spike.

#: Capture classes (the `class` column of energy_per_spike's `captures` table).
BASELINE, SINGLE_SPIKE, MULTIPLE_SPIKES, NO_SPIKE, CONTROL_AFTERPULSE, NO_RESET, SEARCH = 0, 1, 2, 3, 4, 5, 6
CAPTURE_CLASSES = {
    BASELINE: "baseline (sub-threshold reference)",
    SINGLE_SPIKE: "single spike",
    MULTIPLE_SPIKES: "double spike (or more)",
    NO_SPIKE: "no spike",
    CONTROL_AFTERPULSE: "spike + control-wire afterpulse",
    NO_RESET: "spike without control-wire reset",
    SEARCH: "threshold search (not classified)",
}


def event_count(time_s: np.ndarray, excess_v: np.ndarray, level_v: float) -> int:
    """Events in a trace's excess over its linear response: rising crossings of level_v (with
    spike_times_s's hysteresis of half the level)."""
    return int(spike_times_s(time_s, excess_v, level_v).size)


def peak_count(excess_v: np.ndarray, level_v: float, prominence_v: float | None = None) -> int:
    """Spikes as peaks of the excess above level_v standing out by prominence_v (half the level
    by default) from the dips on either side. Two spikes closer than a spike's decay (the main
    wire firing twice ~1 ns apart at 2x threshold) never drop below a crossing's hysteresis
    between them, so rising crossings count them once; their peaks are told apart."""
    return int(peak_indices(excess_v, level_v, prominence_v).size)


def peak_indices(excess_v: np.ndarray, level_v: float, prominence_v: float | None = None) -> np.ndarray:
    """The samples where `peak_count` finds its spikes: the peaks scipy.signal.find_peaks(excess_v,
    height=level_v, prominence=prominence_v) finds, by its definitions (a peak is a sample, or the
    middle of a flat run, higher than both neighbours; its prominence is its height over the higher
    of the lowest samples on either side before a higher one). Not scipy.signal itself: importing
    it takes 0.46 s here, in every process that counts spikes."""
    prominence_v = 0.5 * level_v if prominence_v is None else prominence_v
    x = np.asarray(excess_v, dtype=float)
    change = np.diff(x)
    steps = np.flatnonzero(change)                # flat runs left out: a peak may be a plateau
    rises = change[steps] > 0
    tops = np.flatnonzero(rises[:-1] & ~rises[1:])  # a rise, then (after any flat run) a fall
    peaks = (steps[tops] + 1 + steps[tops + 1]) // 2
    peaks = peaks[x[peaks] >= level_v]
    keep = [p for p in peaks.tolist() if _prominence(x, p) >= prominence_v]
    return np.array(keep, dtype=np.intp)


def _prominence(x: np.ndarray, peak: int) -> float:
    """x[peak] over the higher of the minima of x on either side, each taken up to the first
    sample higher than the peak (or the trace's end)."""
    height = x[peak]
    higher_left = np.flatnonzero(x[:peak] > height)
    start = higher_left[-1] + 1 if higher_left.size else 0
    higher_right = np.flatnonzero(x[peak:] > height)
    stop = peak + higher_right[0] if higher_right.size else x.size
    return float(height - max(x[start:peak + 1].min(), x[peak:stop].min()))


def classify_spiking_capture(main_spikes: int, control_events: int) -> int:
    """The class of a capture at a spiking amplitude, from the spikes counted at the output node
    and the control-wire switchings counted at the bias node.

    Two or more spikes: MULTIPLE_SPIKES; none: NO_SPIKE. One spike with more control switchings
    than spikes: CONTROL_AFTERPULSE (the control wire switched again with no spike to reset);
    with none: NO_RESET (the loop kept the spike's flux). One of each: SINGLE_SPIKE."""
    if main_spikes <= 0:
        return NO_SPIKE
    if main_spikes >= 2:
        return MULTIPLE_SPIKES
    if control_events > main_spikes:
        return CONTROL_AFTERPULSE
    if control_events < main_spikes:
        return NO_RESET
    return SINGLE_SPIKE
