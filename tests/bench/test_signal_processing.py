"""The scope front end's filter: two one-pole sections computed in one pass are the two sections,
and a quiet channel decays to zero instead of stalling on subnormal doubles. Its resampling onto
the scope's sample times: Catmull-Rom, exact for quadratics, the grid's own values at its points."""

from __future__ import annotations

import math

import numpy as np

from sim_backend.bench.signal_processing import (
    _one_pole, digitize, low_pass, low_pass_of_piecewise_linear, resample, section_constants,
)


def test_the_two_pole_pass_is_two_one_pole_sections_to_the_last_bit():
    rng = np.random.default_rng(5)
    signal = np.concatenate([np.zeros(200), np.linspace(0, 1e-3, 40), np.full(300, 1e-3)]) \
        + rng.normal(scale=1e-5, size=540)
    step_s, bandwidth_hz = 16.7e-12, 2e9
    decay, ratio = section_constants(step_s, bandwidth_hz)
    filtered = low_pass(signal, step_s, bandwidth_hz)
    np.testing.assert_array_equal(filtered, _one_pole(_one_pole(signal, decay, ratio), decay, ratio))
    # and it is a low-pass: settled at the step's top, slower than the step itself
    assert abs(filtered[-1] - 1e-3) < 1e-4 and filtered[245] < signal[245]


def test_a_quiet_stretch_skipped_once_settled_gives_the_same_bits_as_computed():
    """A chip at rest holds its node voltages constant for thousands of samples (a stride at rest
    writes one row), where the sections settle onto a fixed point, often an ulp off the input,
    and stop computing: the output is still the two one-pole sections' to the last bit."""
    rng = np.random.default_rng(11)
    levels = rng.choice([0.0, 2.0e-13, -3.7e-4, 1.25e-2, 5e-300], 40)
    signal = np.concatenate([np.full(rng.integers(1, 900), level) + (rng.normal(0, 1e-3, 1) if k % 5 == 0 else 0.0)
                             for k, level in enumerate(levels)])
    for step_s, bandwidth_hz in ((16.7e-12, 4e9), (16.7e-12, 250e6), (5e-12, 1e9)):
        decay, ratio = section_constants(step_s, bandwidth_hz)
        np.testing.assert_array_equal(low_pass(signal, step_s, bandwidth_hz),
                                      _one_pole(_one_pole(signal, decay, ratio), decay, ratio))


def test_a_pulse_then_silence_decays_to_zero_not_to_subnormal_numbers():
    # A chip at rest gives exact zeros after a spike; the filter's state decays by a factor
    # above 1/2 a sample (here 0.72, the 4 GHz chain at 16.7 ps), which on its own stalls on the
    # smallest subnormal double, where every later operation is an order of magnitude slower.
    signal = np.zeros(30_000)
    signal[100:160] = 0.2
    step_s, bandwidth_hz = 16.7e-12, 4e9
    decay, ratio = section_constants(step_s, bandwidth_hz)
    assert decay > 0.5
    for filtered in (low_pass(signal, step_s, bandwidth_hz), _one_pole(signal, decay, ratio)):
        subnormal = (filtered != 0.0) & (np.abs(filtered) < np.finfo(np.float64).tiny)
        assert not subnormal.any(), f"{subnormal.sum()} subnormal samples"
        assert filtered[-1] == 0.0 and filtered[159] > 0.1   # the pulse itself passes


def test_resampling_is_exact_for_quadratics_and_keeps_the_grid_values():
    start_s, step_s = -3e-9, 16.7e-12
    grid_s = start_s + step_s * np.arange(400)
    quadratic = 2e-3 + 5e5 * (grid_s - 1e-10) - 4e14 * (grid_s - 1e-10) ** 2
    times_s = np.sort(np.random.default_rng(2).uniform(grid_s[1], grid_s[-3], 1000))
    exact = 2e-3 + 5e5 * (times_s - 1e-10) - 4e14 * (times_s - 1e-10) ** 2
    np.testing.assert_allclose(resample(start_s, step_s, quadratic, times_s), exact, rtol=0, atol=1e-12)
    np.testing.assert_allclose(resample(start_s, step_s, quadratic, grid_s[1:-2]), quadratic[1:-2], rtol=0, atol=1e-15)
    # a spike's peak between grid points keeps its height better than joining them linearly
    peak = np.exp(-(((grid_s - 1.008e-9) / 30e-12) ** 2))
    at_peak = resample(start_s, step_s, peak, np.array([1.008e-9]))[0]
    assert abs(at_peak - 1.0) < abs(np.interp(1.008e-9, grid_s, peak) - 1.0)


def test_digitize_gives_the_codes_of_resampling_adding_noise_rounding_and_clipping():
    """The scope's ADC in one compiled pass: the very codes of the numpy steps it replaces
    (resample, add the noise drawn as one array, round, clip to 8 bits), on signals that cross the
    screen's edges, and its generator left where numpy's array draw leaves it."""
    rng = np.random.default_rng(20261206)
    lsb_v, offset_v, step_s = 0.4 / 256, 0.1, 16.7e-12
    for seed in range(30):
        signal = np.cumsum(rng.normal(0.0, 0.02, 30_901)) + rng.uniform(-0.3, 0.5)
        times_s = np.sort(rng.uniform(step_s, step_s * (signal.size - 3), 10_000))
        drawing, reference = np.random.default_rng(seed), np.random.default_rng(seed)
        codes = digitize(0.0, step_s, signal, times_s, drawing, 0.5e-3, offset_v, lsb_v, 8)
        volts = resample(0.0, step_s, signal, times_s) + 0.5e-3 * reference.standard_normal(times_s.size)
        expected = np.clip(np.round((volts - offset_v) / lsb_v), -128, 127).astype(np.int16)
        assert codes.dtype == np.int16 and 0 < np.count_nonzero(np.abs(codes) == 127) + np.count_nonzero(codes == -128)
        np.testing.assert_array_equal(codes, expected)
        assert drawing.bit_generator.state == reference.bit_generator.state


def test_digitize_rounds_half_codes_to_even_as_numpy_does():
    lsb_v = 2.0**-8               # exact halves: (m + 1/2)·lsb over lsb is m + 1/2 to the bit
    times_s = np.linspace(1e-11, 5e-10, 50)
    for m in range(-130, 130):
        signal = np.full(64, (m + 0.5) * lsb_v)
        codes = digitize(0.0, 1e-11, signal, times_s, np.random.default_rng(0), 0.0, 0.0, lsb_v, 8)
        assert set(codes.tolist()) == {int(np.clip(np.round(m + 0.5), -128, 127))}


def test_a_piecewise_linear_input_filtered_as_it_is_sampled_is_the_filtered_samples_to_the_bit():
    """A generator's output (piecewise linear, with vertical steps, breakpoints on grid points and
    ends inside and outside the window) filtered without its sampled array: np.interp, the gain
    and low_pass give the very same numbers."""
    rng = np.random.default_rng(3)
    step_s = 16.7e-12
    for case in range(60):
        grid_s = np.minimum(-2e-9 + step_s * np.arange(4_000), 60e-9)
        times_s = np.sort(rng.uniform(-5e-9, 70e-9, rng.integers(2, 40)))
        if case % 3 == 0:
            times_s = np.sort(np.concatenate([times_s, times_s[:3], grid_s[rng.integers(0, grid_s.size, 4)]]))
        values = rng.uniform(-1.0, 1.0, times_s.size) * (rng.random(times_s.size) < 0.7)
        gain = rng.uniform(0.05, 2.0)
        bandwidth_hz = [4e9, 1e9, math.inf][case % 3]
        sampled = np.interp(grid_s, times_s, values) * gain
        if math.isfinite(bandwidth_hz):
            decay, ratio = section_constants(step_s, bandwidth_hz)
            expected = _one_pole(_one_pole(sampled, decay, ratio), decay, ratio)
        else:
            expected = sampled
        np.testing.assert_array_equal(
            low_pass_of_piecewise_linear(times_s, values, gain, grid_s, step_s, bandwidth_hz), expected)
