"""`peak_indices` against the definition it follows, scipy.signal.find_peaks with a height and a
prominence: the same peaks on noisy spike trains, on quantized traces (flat runs, as a scope's
8-bit codes give), and at the edges."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from procedures.analysis.spikes import peak_indices


def _scipy(x: np.ndarray, level: float, prominence: float) -> np.ndarray:
    return scipy.signal.find_peaks(x, height=level, prominence=prominence)[0]


def _spike_train(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n, dtype=float)
    x = rng.normal(0.0, rng.uniform(0.01, 0.3), n)
    for _ in range(rng.integers(0, 6)):
        x += rng.uniform(0.3, 2.0) * np.exp(-0.5 * ((t - rng.uniform(0, n)) / rng.uniform(1, 20)) ** 2)
    return x


@pytest.mark.parametrize("seed", range(40))
def test_the_same_peaks_as_scipy_on_noisy_and_quantized_traces(seed):
    rng = np.random.default_rng(seed)
    x = _spike_train(rng, int(rng.integers(3, 3000)))
    level, prominence = rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.6)
    for trace in (x, np.round(x * rng.choice([4, 16, 64])) / 64):     # quantized: flat runs everywhere
        found = peak_indices(trace, level, prominence)
        assert np.array_equal(found, _scipy(trace, level, prominence)), (seed, level, prominence)


@pytest.mark.parametrize("trace, expected", [
    ([0.0, 1.0, 1.0, 1.0, 0.0], [2]),                 # a flat top: its middle
    ([0.0, 1.0, 1.0, 0.0], [1]),                      # an even one: the left of the two middles
    ([0.0, 1.0, 1.0], []),                            # flat to the end: no fall, no peak
    ([1.0, 0.0, 0.0], []),                            # the first sample is no peak
    ([0.0, 1.0, 0.5, 0.8, 0.0], [1, 3]),              # 0.8 stands 0.3 above its dip
    ([0.0, 1.0, 0.9, 0.95, 0.0], [1]),                # 0.95 stands 0.05 above its dip: not prominent
    ([], []), ([0.5], []), ([0.0, 1.0], []),
])
def test_edges_and_plateaus(trace, expected):
    x = np.array(trace, dtype=float)
    assert peak_indices(x, 0.5, 0.2).tolist() == expected
    if x.size:
        assert _scipy(x, 0.5, 0.2).tolist() == expected
