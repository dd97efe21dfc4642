"""What happens to a signal between the chip and the scope's memory: gain, bandwidth, noise,
trigger, sampling. Pure numpy/numba functions on uniformly sampled arrays."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: A filter state smaller than this in magnitude is set to zero. A section decaying towards zero
#: by a factor above 1/2 per sample would otherwise stall on the smallest subnormal double (the
#: product rounds back to it) and stay there for the rest of the record: a quiet channel then
#: filtered ~15x slower, as every operation on a subnormal is.
FLUSH_BELOW = 1e-250


@njit(cache=True)
def _one_pole(signal: np.ndarray, decay: float, ratio: float) -> np.ndarray:
    """Exact response of τ·y' = x − y to the signal joined linearly between samples
    (decay = exp(−T/τ), ratio = τ/T), settled on the first sample."""
    out = np.empty_like(signal)
    state = signal[0]
    out[0] = state
    ramp = ratio * (1.0 - decay)
    for k in range(1, signal.size):
        x0 = signal[k - 1]
        x1 = signal[k]
        state = x1 + decay * (state - x0) - ramp * (x1 - x0)
        if abs(state) < FLUSH_BELOW:
            state = 0.0
        out[k] = state
    return out


def low_pass(signal: np.ndarray, sample_interval_s: float, bandwidth_hz: float) -> np.ndarray:
    """Two cascaded one-pole sections, each at bandwidth·1.554 so the pair is -3 dB at bandwidth.

    Two poles give a realistic, overshoot-free step response (10-90 % rise ≈ 0.34/bandwidth)
    for an amplifier chain plus scope front end. The filter starts settled on the first sample.
    Each section is solved exactly for an input joined linearly between samples (the chip's and
    the generator's signals are piecewise linear on the grid), so the response hardly depends on
    the grid step as long as the step resolves the signal.
    """
    if not math.isfinite(bandwidth_hz) or bandwidth_hz <= 0:
        return signal.copy()
    decay, ratio = section_constants(sample_interval_s, bandwidth_hz)
    signal = np.ascontiguousarray(signal, dtype=np.float64)
    return _two_poles(signal, decay, ratio)


def section_constants(sample_interval_s: float, bandwidth_hz: float) -> tuple[float, float]:
    """(decay, ratio) of each of low_pass's two sections (see _one_pole)."""
    pole_hz = bandwidth_hz * 1.5537739740300374   # 1/sqrt(sqrt(2) - 1)
    ratio = 1.0 / (2.0 * math.pi * pole_hz * sample_interval_s)
    return math.exp(-1.0 / ratio), ratio


@njit(cache=True, inline="always")
def _two_pole_step(x0, x1, first, second, settled, decay, ramp):
    """(first, second, settled): both sections' states after the input moved linearly from x0 to
    x1 over one sample. A step that left both where they were, on a constant input, leaves them
    there at every later one on the same input (the same operations on the same numbers), so
    while `settled` and the input stays it is not computed: a quiet input (at zero between
    pulses, a chip at rest, where the sections settle on a fixed point often an ulp off the
    input) costs no steps."""
    if settled and x1 == x0:
        return first, second, True
    previous = first
    new_first = x1 + decay * (first - x0) - ramp * (x1 - x0)
    if abs(new_first) < FLUSH_BELOW:
        new_first = 0.0
    new_second = new_first + decay * (second - previous) - ramp * (new_first - previous)
    if abs(new_second) < FLUSH_BELOW:
        new_second = 0.0
    return new_first, new_second, x1 == x0 and new_first == first and new_second == second


@njit(cache=True)
def _two_poles(signal: np.ndarray, decay: float, ratio: float) -> np.ndarray:
    """`_one_pole` twice in one pass over the signal (the same operations in the same order, so the
    same numbers, with one array written instead of two)."""
    out = np.empty_like(signal)
    first = signal[0]
    second = first
    out[0] = second
    ramp = ratio * (1.0 - decay)
    settled = False
    for k in range(1, signal.size):
        first, second, settled = _two_pole_step(signal[k - 1], signal[k], first, second, settled, decay, ramp)
        out[k] = second
    return out


def low_pass_of_piecewise_linear(times_s: np.ndarray, values: np.ndarray, gain: float, sample_times_s: np.ndarray,
                                  sample_interval_s: float, bandwidth_hz: float) -> np.ndarray:
    """`low_pass` of gain × the piecewise-linear (times_s, values) at the (uniform, rising)
    sample times, held at its end values outside, without making the sampled array: the same
    numbers as np.interp, the product and low_pass, in one pass that skips what stays at zero
    (a monitored input between pulses)."""
    if not math.isfinite(bandwidth_hz) or bandwidth_hz <= 0:
        return np.interp(sample_times_s, times_s, values) * gain
    decay, ratio = section_constants(sample_interval_s, bandwidth_hz)
    return _two_poles_of_piecewise_linear(np.ascontiguousarray(times_s, dtype=np.float64),
                                          np.ascontiguousarray(values, dtype=np.float64), float(gain),
                                          np.ascontiguousarray(sample_times_s, dtype=np.float64), decay, ratio)


@njit(cache=True, inline="always")
def _interpolated(times_s, values, slopes, time_s, j):
    """(value at time_s, segment index) of the piecewise-linear function as np.interp gives it
    (`slopes` as it computes them): the end values outside, a breakpoint's own value on it; `j`
    the segment to start looking from (times only grow)."""
    last = times_s.size - 1
    if time_s < times_s[0]:
        return values[0], j
    if time_s >= times_s[last]:
        return values[last], j
    while times_s[j + 1] <= time_s:
        j += 1
    if times_s[j] == time_s:
        return values[j], j
    return slopes[j] * (time_s - times_s[j]) + values[j], j


@njit(cache=True)
def _two_poles_of_piecewise_linear(times_s, values, gain, sample_times_s, decay, ratio):
    # _two_poles on the samples computed as it goes (the same operations in the same order)
    out = np.empty(sample_times_s.size)
    slopes = np.empty(max(times_s.size - 1, 0))
    for i in range(slopes.size):    # a vertical step's segment is never interpolated in
        span_s = times_s[i + 1] - times_s[i]
        slopes[i] = (values[i + 1] - values[i]) / span_s if span_s != 0.0 else 0.0
    x1, j = _interpolated(times_s, values, slopes, sample_times_s[0], 0)
    x1 = x1 * gain
    first = x1
    second = first
    out[0] = second
    ramp = ratio * (1.0 - decay)
    settled = False
    for k in range(1, sample_times_s.size):
        x0 = x1
        x1, j = _interpolated(times_s, values, slopes, sample_times_s[k], j)
        x1 = x1 * gain
        first, second, settled = _two_pole_step(x0, x1, first, second, settled, decay, ramp)
        out[k] = second
    return out


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


def resample(start_s: float, step_s: float, signal: np.ndarray, sample_times_s: np.ndarray) -> np.ndarray:
    """Values of a uniformly sampled, band-limited signal at other times (cubic Catmull-Rom
    interpolation: exact for quadratics, so a scope sample between grid points keeps a peak's
    height where joining the grid points linearly would cut it)."""
    return _catmull_rom(float(start_s), float(step_s), np.ascontiguousarray(signal, dtype=np.float64),
                        np.ascontiguousarray(sample_times_s, dtype=np.float64))


def digitize(start_s: float, step_s: float, signal: np.ndarray, sample_times_s: np.ndarray,
             rng: np.random.Generator, noise_rms_v: float, offset_v: float, lsb_v: float, bits: int) -> np.ndarray:
    """An ADC's signed codes (int16) of the signal at the sample times (`resample`), with noise
    `noise_rms_v` times a standard normal from `rng` added to each: rounded to the nearest code
    (half to even), centred on `offset_v`, clipped to the `bits`-bit range at the screen's edges.
    One pass, no temporaries: the same numbers as resampling, adding `noise_rms_v` times
    `rng.standard_normal(sample_times_s.size)`, rounding and clipping with numpy, and `rng` left
    in the same state (numba draws with numpy's own algorithm, four times faster than numpy's
    array call here)."""
    return _digitized(float(start_s), float(step_s), np.ascontiguousarray(signal, dtype=np.float64),
                      np.ascontiguousarray(sample_times_s, dtype=np.float64), rng, float(noise_rms_v),
                      float(offset_v), float(lsb_v), float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1))


@njit(cache=True, inline="always")
def _catmull_rom_at(start_s, step_s, signal, time_s):
    position = (time_s - start_s) / step_s
    index = min(max(int(math.floor(position)), 1), signal.size - 3)
    u = position - index
    p0, p1, p2, p3 = signal[index - 1], signal[index], signal[index + 1], signal[index + 2]
    return p1 + 0.5 * u * (p2 - p0 + u * (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3 + u * (3.0 * (p1 - p2) + p3 - p0)))


@njit(cache=True)
def _catmull_rom(start_s: float, step_s: float, signal: np.ndarray, sample_times_s: np.ndarray) -> np.ndarray:
    # One pass instead of numpy's temporaries and four gathers (0.31 ms for a 10,000-sample
    # record, two per acquisition); the same operations in the same order.
    out = np.empty(sample_times_s.size)
    for k in range(sample_times_s.size):
        out[k] = _catmull_rom_at(start_s, step_s, signal, sample_times_s[k])
    return out


@njit(cache=True)
def _digitized(start_s, step_s, signal, sample_times_s, rng, noise_rms_v, offset_v, lsb_v, code_min, code_max):
    out = np.empty(sample_times_s.size, dtype=np.int16)
    for k in range(sample_times_s.size):
        volts = _catmull_rom_at(start_s, step_s, signal, sample_times_s[k]) + noise_rms_v * rng.standard_normal()
        code = np.rint((volts - offset_v) / lsb_v)
        out[k] = np.int16(min(max(code, code_min), code_max))
    return out
