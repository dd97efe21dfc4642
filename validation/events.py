"""Switching events and waveform figures, computed the same way for ngspice and the emulator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def crossings_up(time_s: np.ndarray, signal: np.ndarray, level: float) -> np.ndarray:
    """Times where `signal` rises through `level`, linearly interpolated between samples."""
    t, y = np.asarray(time_s, float), np.asarray(signal, float)
    idx = np.flatnonzero((y[:-1] <= level) & (y[1:] > level))
    frac = (level - y[idx]) / (y[idx + 1] - y[idx])
    return t[idx] + frac * (t[idx + 1] - t[idx])


def switching_times_s(time_s: np.ndarray, wire_current_a: np.ndarray, switching_current_a: float) -> np.ndarray:
    """Superconducting -> normal transitions: |I| rising through I_sw (the model's trigger)."""
    return crossings_up(time_s, np.abs(wire_current_a), switching_current_a)


@dataclass(frozen=True)
class Figures:
    """What the cross-checks compare: switching times, mean period, peak voltage per event."""

    switching_s: np.ndarray
    period_s: float  # mean interval between switchings (nan with fewer than two)
    peak_v: np.ndarray  # max |V| after each switching, until the next one
    peak_delay_s: np.ndarray

    def summary(self) -> dict[str, float]:
        return {
            "first_switch_s": float(self.switching_s[0]) if self.switching_s.size else float("nan"),
            "n_switch": float(self.switching_s.size),
            "period_s": self.period_s,
            "peak_v": float(self.peak_v.max()) if self.peak_v.size else float("nan"),
        }


def figures(time_s: np.ndarray, wire_current_a: np.ndarray, switching_current_a: float,
            node_v: np.ndarray, *, skip: int = 1) -> Figures:
    """Figures of one wire; `skip` leading events are left out of the period (start-up cycle)."""
    t = np.asarray(time_s, float)
    v = np.asarray(node_v, float)
    sw = switching_times_s(t, wire_current_a, switching_current_a)
    steady = sw[skip:] if sw.size > skip + 1 else sw
    period = float(np.mean(np.diff(steady))) if steady.size >= 2 else float("nan")
    peaks, delays = [], []
    bounds = [*sw[1:], t[-1]]
    for t0, t1 in zip(sw, bounds):
        sel = (t >= t0) & (t <= t1)
        if not np.any(sel):
            continue
        j = int(np.argmax(np.abs(v[sel])))
        peaks.append(float(np.abs(v[sel])[j]))
        delays.append(float(t[sel][j] - t0))
    return Figures(sw, period, np.asarray(peaks), np.asarray(delays))
