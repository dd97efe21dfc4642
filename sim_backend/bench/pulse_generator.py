"""A pulse generator's front panel and the voltage it puts on its output connector.

The Keysight 33500B/33600A and 81160A personalities both drive this model: they differ in
SCPI and in their limits (edge times, amplitude), not in what a pulse is.

An arbitrary waveform (function ARB) is played point by point at its sample rate, one whole
waveform per cycle, its -1..+1 full scale mapped to the low..high levels as the generators do.
Between points the output is joined linearly (the generators' smoothing filters), or, with the
filter off, held and stepped over `arb_step_s` (the DAC's transition).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Function = Literal["PULS", "DC", "SQU", "ARB"]
TriggerSource = Literal["IMM", "BUS", "EXT", "TIM"]

#: Delay from a trigger to the start of the first pulse's leading edge.
TRIGGER_LATENCY_S = 100e-9
#: Pulse timing relative to a window's origin is resolved to this (2^-33 s, 0.12 ns). Lab times
#: are float seconds that reach 10^4–10^5 s in a campaign, where floats are 2–15 ps apart: a
#: window anchored on a trigger (origin = trigger + latency) would otherwise see that trigger's
#: pulse up to half a spacing early or late, by an amount set by the wall clock, and a pulse
#: near threshold fire in one run and not in the next.
PULSE_TIME_RESOLUTION_S = 2.0**-33


def _resolved(offset_s: float) -> float:
    return round(offset_s / PULSE_TIME_RESOLUTION_S) * PULSE_TIME_RESOLUTION_S


@dataclass
class GeneratorChannel:
    """Settings of one output channel, as the instrument holds them (SI units)."""

    function: Function = "PULS"
    amplitude_vpp: float = 0.1
    offset_v: float = 0.0
    frequency_hz: float = 1e3
    pulse_width_s: float = 100e-9
    lead_edge_s: float = 10e-9        # 10 %-90 % transition time
    trail_edge_s: float = 10e-9
    burst_enabled: bool = False
    burst_cycles: int = 1
    trigger_source: TriggerSource = "IMM"
    output_enabled: bool = False
    inverted: bool = False
    load_ohm: float = 50.0            # the load the amplitude is specified into (inf = high Z)
    #: Lab times of burst triggers not yet superseded; the bench trims old ones.
    trigger_times_s: list[float] = field(default_factory=list)
    #: Lab time from which a continuous (non-burst) waveform has been running.
    running_since_s: float = 0.0
    #: Function ARB: the points in full scale (-1..+1), played at arb_sample_rate_hz (one
    #: waveform per period: frequency_hz = arb_sample_rate_hz / points).
    arb_points: tuple[float, ...] = (0.0,) * 8
    arb_sample_rate_hz: float = 40e3
    arb_step_s: float = 0.0           # 0: points joined linearly; > 0: held, stepped over this time

    @property
    def period_s(self) -> float:
        return 1.0 / self.frequency_hz

    @property
    def low_v(self) -> float:
        return self.offset_v - self.amplitude_vpp / 2

    @property
    def high_v(self) -> float:
        return self.offset_v + self.amplitude_vpp / 2

    def pulse_offsets_s(self, origin_s: float, start_rel_s: float, stop_rel_s: float) -> np.ndarray:
        """Leading-edge starts within [start_rel_s, stop_rel_s), relative to lab time origin_s.

        Offsets are built from the trigger (or run start) relative to the origin (to
        PULSE_TIME_RESOLUTION_S) plus whole periods, so that a window anchored on a trigger stays
        exact even hours into a run.
        """
        if not self.output_enabled or self.function == "DC":
            return np.empty(0)
        if self.burst_enabled:
            # Only the cycles that fall inside the window: a burst may hold 1e8 cycles.
            pieces = []
            for trigger_s in self.trigger_times_s:
                base_rel_s = _resolved((trigger_s - origin_s) + TRIGGER_LATENCY_S)
                first = max(np.ceil((start_rel_s - base_rel_s) / self.period_s), 0.0)
                last = min(np.floor((stop_rel_s - base_rel_s) / self.period_s), self.burst_cycles - 1.0)
                if last >= first:
                    pieces.append(base_rel_s + np.arange(first, last + 1) * self.period_s)
            offsets = np.concatenate(pieces) if pieces else np.empty(0)
        else:
            base_rel_s = _resolved(self.running_since_s - origin_s)
            first = max(np.ceil((start_rel_s - base_rel_s) / self.period_s), 0.0)
            last = np.floor((stop_rel_s - base_rel_s) / self.period_s)
            offsets = base_rel_s + np.arange(first, last + 1) * self.period_s
        return offsets[(offsets >= start_rel_s) & (offsets < stop_rel_s)]

    def next_pulse_start_s(self, after_s: float) -> float | None:
        """Lab time of the first leading edge at or after `after_s`, or None if none is due."""
        horizon_s = TRIGGER_LATENCY_S + self.period_s * (self.burst_cycles + 1 if self.burst_enabled else 1)
        offsets = self.pulse_offsets_s(after_s, 0.0, horizon_s)
        return after_s + float(offsets[0]) if offsets.size else None

    def output_v(self, origin_s: float, start_rel_s: float, stop_rel_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Piecewise-linear output voltage over a window: (times relative to origin_s, volts).

        A pulse's width is measured at 50 % of its edges, as on Keysight generators; a 10-90 %
        edge time t corresponds to a linear ramp of t / 0.8.
        """
        if self.output_enabled and self.function == "ARB":
            return self._arb_output_v(origin_s, start_rel_s, stop_rel_s)
        if not self.output_enabled:
            idle_v = high_v = 0.0
        elif self.function == "DC":
            idle_v = high_v = self.offset_v
        else:
            idle_v, high_v = self.low_v, self.high_v
            if self.inverted:
                idle_v, high_v = 2 * self.offset_v - idle_v, 2 * self.offset_v - high_v
        times, volts = [start_rel_s], [idle_v]
        lead_s, trail_s = self.lead_edge_s / 0.8, self.trail_edge_s / 0.8
        top_s = max(self.pulse_width_s - (lead_s + trail_s) / 2, 0.0)
        earliest_rel_s = start_rel_s - lead_s - top_s - trail_s
        for edge_s in self.pulse_offsets_s(origin_s, earliest_rel_s, stop_rel_s):
            corners = (edge_s, edge_s + lead_s, edge_s + lead_s + top_s, edge_s + lead_s + top_s + trail_s)
            for t_s, v in zip(corners, (idle_v, high_v, high_v, idle_v)):
                if t_s > times[-1]:
                    times.append(t_s)
                    volts.append(v)
                elif t_s == times[-1]:
                    volts[-1] = v
        if stop_rel_s > times[-1]:
            times.append(stop_rel_s)
            volts.append(volts[-1] if len(times) == 2 else idle_v)
        return np.asarray(times), np.asarray(volts)

    def _arb_output_v(self, origin_s: float, start_rel_s: float, stop_rel_s: float) -> tuple[np.ndarray, np.ndarray]:
        """The arbitrary waveform's cycles over a window; between bursts (and before the
        first) the output rests at the waveform's first point."""
        sign = -1.0 if self.inverted else 1.0
        volts_of = self.offset_v + sign * np.asarray(self.arb_points) * (self.amplitude_vpp / 2)
        sample_s = 1.0 / self.arb_sample_rate_hz
        count = volts_of.size
        times, volts = [], []
        for cycle_s in self.pulse_offsets_s(origin_s, start_rel_s - count * sample_s, stop_rel_s):
            # Only the points near the window, with one on each side to interpolate from.
            first = int(max(np.floor((start_rel_s - cycle_s) / sample_s) - 1, 0))
            last = int(min(np.ceil((stop_rel_s - cycle_s) / sample_s) + 1, count))
            index = np.arange(first, last + 1)
            point_v = volts_of[index % count]         # a cycle ends where the next starts, at point 0
            if self.arb_step_s > 0:                 # each point held, then stepped to the next
                held_s = cycle_s + index[:-1] * sample_s
                times += [np.column_stack((held_s, held_s + sample_s - self.arb_step_s)).ravel(),
                          cycle_s + index[-1:] * sample_s]
                volts += [np.repeat(point_v[:-1], 2), point_v[-1:]]
            else:
                times.append(cycle_s + index * sample_s)
                volts.append(point_v)
        if not times or times[0][0] > start_rel_s:
            times.insert(0, np.array([start_rel_s]))
            volts.insert(0, volts_of[:1])
        time_s, volt_v = np.concatenate(times), np.concatenate(volts)
        later = np.append(np.diff(time_s) > 0, True)   # where two cycles meet, one point
        time_s, volt_v = time_s[later], volt_v[later]
        if stop_rel_s > time_s[-1]:
            time_s, volt_v = np.append(time_s, stop_rel_s), np.append(volt_v, volt_v[-1])
        return time_s, volt_v


@dataclass
class PulseGeneratorPanel:
    """All channels of one generator."""

    channels: dict[int, GeneratorChannel]

    @classmethod
    def with_channels(cls, count: int) -> PulseGeneratorPanel:
        return cls({n: GeneratorChannel() for n in range(1, count + 1)})

    def trigger(self, now_s: float, *, source: TriggerSource = "BUS") -> None:
        """A trigger (*TRG, front-panel button) starts a burst on channels waiting for it."""
        for channel in self.channels.values():
            if channel.output_enabled and channel.burst_enabled and channel.trigger_source == source:
                channel.trigger_times_s.append(now_s)
                del channel.trigger_times_s[:-16]   # history of interest to an acquisition
