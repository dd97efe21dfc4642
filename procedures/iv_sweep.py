"""I–V sweep and switching-current statistics at the chip's bias port.

What is measured: the voltage across the *bias port* (node c of the neuron) against the DC
current forced into it, line resistance removed. That current divides between the branches
in inverse proportion to their inductances (physics reference §1.3): most of it flows straight
into the control wire (c→ground), the rest through the loop inductor and the main wire. The
port therefore switches when the first wire — normally the control wire — reaches its own
switching current, at a port current of I_sw,wire divided by that wire's share. The figures
below are port currents, not a single wire's I_sw.

Plan:
1. `pilot_sweeps` full sweeps 0 → bias_max → 0 with `pilot_points` readings each way: the I–V
   curve (table "iv_curve"), a first switching current, the retrapping current (the bias at
   which the down-sweep's voltage returns to ~0) and the resistive branch's dV/dI.
2. Fast sweeps, one switching event each (table "switching_events"): jump to the start of a
   window around the expected switching current, step up through at most `fine_points`
   readings until the voltage jumps, then ramp back down below retrapping. The window is
   re-centred every `window_update_events` events on the mean ± window_sigmas·σ so far.
   A switch is recorded at the midpoint of the step in which it happened. A sweep already
   switched at its first point did not retrap: it is discarded and the bias goes to zero.
Fast sweeps go on until `switching_events` valid events or 10 % more sweeps than asked.

On the default neuron (emulated station): the control wire switches first, near 1.5 I_sw,c at
the port, but only transiently - its current moves into the loop as trapped flux and the port
stays at 0 V. The port turns resistive where both wires carry their I_sw at once, at
I_sw,m + I_sw,c (36.6 uA at the 3.17 K base of the stage, sigma ~50-80 nA); it retraps ~1 uA lower.
After a retrap the loop holds flux that leaves a wire near its I_sw, so many fast sweeps latch
resistive at their first point and are discarded: at present ~15 % of sweeps give an event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lab import steps
from lab.procedure import PlanContext, Procedure, parameter
from lab.records import Axis, ColumnSpec, Result, TableRows, TableSpec
from procedures.analysis import iv
from procedures.analysis.statistics import histogram, summarize
from procedures.design import DesignHints


@dataclass(frozen=True)
class IvSweepParameters:
    switching_events: int = parameter(1000, unit="1", doc="switching events to collect", minimum=1, maximum=100_000)
    pilot_sweeps: int = parameter(2, unit="1", doc="full up/down sweeps for the I-V curve", minimum=1, maximum=100)
    pilot_points: int = parameter(40, unit="1", doc="readings per pilot sweep direction", minimum=4, maximum=2000)
    bias_max_a: float = parameter(0.0, unit="A", doc="top of the pilot sweeps; 0 takes 1.1x the design "
                                  "switching current of the bias port", minimum=0.0, maximum=1e-3)
    fine_points: int = parameter(12, unit="1", doc="most readings per fast sweep", minimum=2, maximum=1000)
    window_sigmas: float = parameter(4.0, unit="1", doc="fast-sweep window half-width in sigma", minimum=0.5)
    min_window_fraction: float = parameter(0.005, unit="1", doc="smallest window half-width as a fraction of "
                                           "the switching current", minimum=1e-5, maximum=0.5)
    window_update_events: int = parameter(100, unit="1", doc="re-centre the window every this many events",
                                          minimum=5, maximum=100_000)
    reset_margin_fraction: float = parameter(0.05, unit="1", doc="go this fraction of the switching current "
                                             "below the retrapping current to reset", minimum=0.0, maximum=1.0)
    ramp_a_per_s: float = parameter(1e-3, unit="A/s", doc="bias ramp rate", minimum=1e-9)
    switched_v: float = parameter(20e-6, unit="V", doc="|V| above this means the port is resistive",
                                  minimum=1e-9)
    approach_points: int = parameter(4, unit="1", doc="readings on the way from the reset level to the "
                                     "window", minimum=0, maximum=1000)
    histogram_bins: int = parameter(40, unit="1", doc="bins of the switching-current histogram", minimum=2,
                                    maximum=10_000)


@dataclass(frozen=True)
class Window:
    start_a: float
    step_a: float
    reset_a: float


class IvSweep(Procedure):
    name = "iv_sweep"
    Parameters = IvSweepParameters

    def declare(self):
        return None, {
            "iv_curve": TableSpec({"sweep": ColumnSpec("1", "i8"), "direction": ColumnSpec("1", "i8"),
                                   "bias_a": ColumnSpec("A"), "voltage_v": ColumnSpec("V")},
                                  axis="bias_a", signal="voltage_v"),
            "switching_events": TableSpec({"event": ColumnSpec("1", "i8"), "switching_current_a": ColumnSpec("A"),
                                           "step_a": ColumnSpec("A"), "readings": ColumnSpec("1", "i8")},
                                          axis="event", signal="switching_current_a"),
        }

    def plan(self, context: PlanContext):
        p = self.parameters
        design = DesignHints.from_chip(context.chip_design)
        top_a = p.bias_max_a or 1.1 * design.switching_current_a
        switches, retraps, resistances = [], [], []
        for sweep in range(p.pilot_sweeps):
            curve = yield from self._pilot(sweep, top_a)
            switches.append(curve[0])
            retraps.append(curve[1])
            resistances.append(curve[2])
            yield steps.Progress(fraction=0.1 * (sweep + 1) / p.pilot_sweeps, message=f"pilot sweep {sweep + 1}")
        pilot_switch = summarize(switches)
        retrap_a = summarize(retraps).mean
        expected_a = pilot_switch.mean if math.isfinite(pilot_switch.mean) else design.switching_current_a
        coarse_a = top_a / (p.pilot_points - 1)
        # The pilot resolves the switch to one coarse step: search that step and its neighbours.
        pilot_std = pilot_switch.std if pilot_switch.count > 1 else 0.0
        window = self._window(expected_a, max(pilot_std, coarse_a / p.window_sigmas), retrap_a, expected_a, top_a)

        events: list[float] = []
        sweeps, most = 0, int(math.ceil(1.1 * p.switching_events))
        while len(events) < p.switching_events and sweeps < most:
            current_a, readings = yield from self._fast_sweep(window)
            sweeps += 1
            if math.isfinite(current_a):
                events.append(current_a)
                yield steps.Archive(TableRows("switching_events", {
                    "event": (np.array([len(events) - 1]), "1"), "switching_current_a": (np.array([current_a]), "A"),
                    "step_a": (np.array([window.step_a]), "A"), "readings": (np.array([readings]), "1")}))
            if sweeps % p.window_update_events == 0:
                so_far = summarize(events)
                if so_far.count >= 5:
                    window = self._window(so_far.mean, so_far.std, retrap_a, so_far.mean, top_a)
                yield steps.Progress(fraction=0.1 + 0.9 * min(len(events) / p.switching_events, 1.0),
                                     message=f"{len(events)} switching events")
        yield steps.SetBias(current_a=0.0, ramp_a_per_s=p.ramp_a_per_s)
        yield from self._results(events, retraps, resistances, sweeps)

    # --- pieces of the plan ------------------------------------------------------------------
    def _pilot(self, sweep: int, top_a: float):
        """One full sweep up and down; returns (switching, retrapping current, dV/dI)."""
        p = self.parameters
        up_a = np.linspace(0.0, top_a, p.pilot_points)
        down_a = up_a[::-1]
        up_v, down_v = np.zeros_like(up_a), np.zeros_like(down_a)
        for values_a, values_v in ((up_a, up_v), (down_a, down_v)):
            for k, current_a in enumerate(values_a):
                yield steps.SetBias(current_a=float(current_a), ramp_a_per_s=p.ramp_a_per_s)
                values_v[k] = yield steps.MeasureBiasVoltage()
        bias = np.concatenate([up_a, down_a])
        yield steps.Archive(TableRows("iv_curve", {
            "sweep": (np.full(bias.size, sweep), "1"),
            "direction": (np.concatenate([np.ones(up_a.size, int), -np.ones(down_a.size, int)]), "1"),
            "bias_a": (bias, "A"), "voltage_v": (np.concatenate([up_v, down_v]), "V")}))
        switch_a = iv.switching_current_a(up_a, up_v, p.switched_v)
        retrap_a = iv.retrapping_current_a(down_a, down_v, p.switched_v)
        above = up_a >= switch_a if math.isfinite(switch_a) else np.zeros(up_a.size, bool)
        resistance = iv.resistive_branch_ohm(up_a[above], up_v[above], p.switched_v)
        return switch_a, retrap_a, resistance

    def _window(self, centre_a: float, sigma_a: float, retrap_a: float, scale_a: float, top_a: float) -> Window:
        """Fine steps over centre ± max(window_sigmas·σ, min_window_fraction·scale), inside [0, top]."""
        p = self.parameters
        half_a = max(p.window_sigmas * sigma_a, p.min_window_fraction * abs(scale_a), 1e-12)
        start_a = min(max(centre_a - half_a, 0.0), top_a)
        step_a = (min(centre_a + half_a, top_a) - start_a) / (p.fine_points - 1)
        margin_a = p.reset_margin_fraction * abs(scale_a)
        below_retrap_a = retrap_a - margin_a if math.isfinite(retrap_a) else 0.0
        reset_a = max(min(start_a - step_a, below_retrap_a), 0.0)
        return Window(start_a, step_a, reset_a)

    def _fast_sweep(self, window: Window):
        """Step up until the port switches, then reset below retrapping and read there: the
        reading confirms the retrap (a port still resistive goes to zero) and makes the chip see
        the reset level at all (an SMU level is applied; the chip's state is what it was at the
        last reading). Returns (switching current or NaN, readings)."""
        p = self.parameters
        found, readings, stuck = math.nan, 0, False
        # Climb from the reset level to the window in read steps: one jump of several µA makes
        # the wires switch dynamically, and the port can latch resistive below its DC switching.
        for current_a in np.linspace(window.reset_a, window.start_a, p.approach_points + 2)[1:-1]:
            yield steps.SetBias(current_a=float(current_a), ramp_a_per_s=p.ramp_a_per_s)
            voltage_v = yield steps.MeasureBiasVoltage()
            readings += 1
            if abs(voltage_v) > p.switched_v:
                yield steps.SetBias(current_a=0.0, ramp_a_per_s=p.ramp_a_per_s)
                return math.nan, readings
        for k in range(p.fine_points):
            current_a = window.start_a + k * window.step_a
            yield steps.SetBias(current_a=current_a, ramp_a_per_s=p.ramp_a_per_s)
            voltage_v = yield steps.MeasureBiasVoltage()
            readings += 1
            if abs(voltage_v) > p.switched_v:
                # Switched at the first point: it had not retrapped; do not count it.
                stuck = k == 0
                found = math.nan if stuck else current_a - 0.5 * window.step_a
                break
        yield steps.SetBias(current_a=0.0 if stuck else window.reset_a, ramp_a_per_s=p.ramp_a_per_s)
        if not stuck and math.isfinite(found):
            still_v = yield steps.MeasureBiasVoltage()
            if abs(still_v) > p.switched_v:
                yield steps.SetBias(current_a=0.0, ramp_a_per_s=p.ramp_a_per_s)
                yield steps.MeasureBiasVoltage()
        return found, readings

    def _results(self, events, retraps, resistances, sweeps):
        p = self.parameters
        stats = summarize(events)
        counts, edges = histogram(events, p.histogram_bins)
        centres = 0.5 * (edges[1:] + edges[:-1])
        for name, value, units in (
            ("switching_current_mean_a", stats.mean, "A"), ("switching_current_std_a", stats.std, "A"),
            ("switching_current_stderr_a", stats.stderr, "A"), ("switching_events", stats.count, "1"),
            ("fast_sweeps", sweeps, "1"),
            ("retrapping_current_a", summarize(retraps).mean, "A"),
            ("resistive_branch_ohm", summarize(resistances).mean, "ohm"),
        ):
            yield steps.Archive(Result(name, value, units))
        yield steps.Archive(Result("switching_current_histogram", counts, "1",
                                   Axis("switching_current_bin_a", centres, "A")))
