"""The scope front end's filter: two one-pole sections computed in one pass are the two sections."""

from __future__ import annotations

import numpy as np

from sim_backend.bench.signal_processing import _one_pole, low_pass, section_constants


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
