"""Time-dependent source values: piecewise-linear waveforms (sampled data is a special case)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Waveforms of at most this many points are checked in Python: numpy's cost per call dominates
#: tiny arrays, and the bench builds several of them for every simulated window.
SMALL_POINTS = 16


@dataclass(frozen=True, eq=False)
class PiecewiseLinear:
    """Value vs time, linear between points, held constant before the first and after the last.

    Times must be strictly increasing (a step needs a finite rise: the solver integrates dI/dt).
    """

    times_s: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        t = np.array(self.times_s, dtype=np.float64).reshape(-1)
        v = np.array(self.values, dtype=np.float64).reshape(-1)
        if t.size == 0 or t.size != v.size:
            raise ValueError(f"PiecewiseLinear needs equal, non-zero numbers of times and values "
                             f"({t.size} vs {v.size})")
        if t.size <= SMALL_POINTS:
            times = t.tolist()
            finite = all(map(math.isfinite, times)) and all(map(math.isfinite, v.tolist()))
            increasing = all(a < b for a, b in zip(times, times[1:]))
        else:
            finite = bool(np.all(np.isfinite(t)) and np.all(np.isfinite(v)))
            increasing = not np.any(np.diff(t) <= 0)
        if not finite:
            raise ValueError("PiecewiseLinear times and values must be finite")
        if not increasing:
            raise ValueError("PiecewiseLinear times_s must be strictly increasing")
        t.setflags(write=False)
        v.setflags(write=False)
        object.__setattr__(self, "times_s", t)
        object.__setattr__(self, "values", v)

    @classmethod
    def constant(cls, value: float) -> PiecewiseLinear:
        return _constant(cls, float(value))

    @classmethod
    def from_samples(cls, start_s: float, interval_s: float, values: np.ndarray) -> PiecewiseLinear:
        """Uniformly sampled data (e.g. a generator's arbitrary waveform), joined linearly."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        return cls(start_s + interval_s * np.arange(values.size), values)

    @classmethod
    def pulse(
        cls, amplitude: float, *, delay_s: float, width_s: float, rise_s: float,
        fall_s: float | None = None, baseline: float = 0.0,
    ) -> PiecewiseLinear:
        """Trapezoid: baseline until delay_s, ramp over rise_s, flat for width_s, ramp down over fall_s.

        width_s is the flat top plus half of each edge (the 50 % width), as generators define it.
        """
        fall_s = rise_s if fall_s is None else fall_s
        if not (rise_s > 0 and fall_s > 0 and width_s > 0.5 * (rise_s + fall_s) and delay_s >= 0):
            raise ValueError("pulse needs rise_s, fall_s > 0, width_s > (rise_s+fall_s)/2 and delay_s >= 0")
        top_s = width_s - 0.5 * (rise_s + fall_s)
        t = np.array([delay_s, delay_s + rise_s, delay_s + rise_s + top_s, delay_s + rise_s + top_s + fall_s])
        v = np.array([baseline, baseline + amplitude, baseline + amplitude, baseline])
        return cls(t, v)

    def __call__(self, t_s: np.ndarray | float) -> np.ndarray:
        return np.interp(t_s, self.times_s, self.values)

    def shifted(self, offset_s: float) -> PiecewiseLinear:
        return PiecewiseLinear(self.times_s + offset_s, self.values)

    def __add__(self, other: PiecewiseLinear) -> PiecewiseLinear:
        t = np.union1d(self.times_s, other.times_s)
        return PiecewiseLinear(t, self(t) + other(t))


@lru_cache(maxsize=1024)
def _constant(cls: type[PiecewiseLinear], value: float) -> PiecewiseLinear:
    """One object per constant (immutable, its arrays read-only): a simulation's undriven sources
    and a bias held at one level would otherwise build and check a new waveform on every call."""
    return cls(np.array([0.0]), np.array([value]))
