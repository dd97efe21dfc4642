"""Every acquisition of an emulated run, with the chip state it started from: what a run's own
truth is computed from.

A chip whose loop keeps current from spike to spike has no one threshold or refractory period:
each spike leaves a little more current circulating until a spike resets the control wire (see
validation/ground_truth.py), and which states a measurement meets depends on its own sequence
of pulses. A psychometric fit over trials taken from a mixture of states estimates the median,
over the states its trials met, of the amplitude (or spacing) that fires from each: that is the
truth its interval must cover, computed here from the states the emulator recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_backend.physics.waveform import PiecewiseLinear


def record_captures(world) -> list:
    """Make `world` (an emulated bench's World) append every acquisition's CaptureTruth
    (sim_backend/bench/acquisition.py) to the returned list, in the order the scope completes
    them (the procedure's capture order), each with every trace of the chip (its energies too)."""
    captures: list = []
    world.capture_all_traces = True

    class Recording(type(world)):
        @property
        def last_capture(self):
            return self.__dict__.get("_last")

        @last_capture.setter
        def last_capture(self, value):
            self.__dict__["_last"] = value
            if value is not None:
                captures.append(value)

    world.__class__ = Recording
    return captures


@dataclass(frozen=True)
class Pulses:
    """The pulses of an input current waveform: their common amplitude, the first one's width
    at half height, and each one's leading half-height crossing (window-relative times)."""
    amplitude_a: float
    width_s: float
    starts_s: tuple[float, ...]


def pulses(waveform: PiecewiseLinear) -> Pulses | None:
    """The pulses of `waveform` (None if it holds none: a DC level or nothing)."""
    times, values = np.asarray(waveform.times_s, float), np.asarray(waveform.values, float)
    amplitude_a = float(np.max(values)) if values.size else 0.0
    if amplitude_a <= 0.0 or np.allclose(values, values[0]):
        return None
    half = values - amplitude_a / 2
    crossings = []                      # (time, rising)
    for i in np.flatnonzero(np.sign(half[:-1]) != np.sign(half[1:])):
        if half[i] == half[i + 1]:
            continue
        t = times[i] + (times[i + 1] - times[i]) * (-half[i]) / (half[i + 1] - half[i])
        crossings.append((float(t), half[i + 1] > half[i]))
    rising = [t for t, up in crossings if up]
    falling = [t for t, up in crossings if not up and rising and t > rising[0]]
    if not rising or not falling:
        return None
    return Pulses(amplitude_a, falling[0] - rising[0], tuple(rising))
