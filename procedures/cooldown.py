"""Cooldown: bring the sample stage to a setpoint and hold it there until it is stable.

Sets the controller's setpoint (ramped), logs the stage temperature every `log_interval_s`
while it approaches, then waits until it stays within `tolerance_k` of the setpoint for
`hold_s`. The log is archived as the table "temperature_log" (lab time, temperature); the
temperature held is the mean of HELD_READINGS further readings, with its interval.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from contracts import steps
from contracts.procedure import PlanContext, Procedure, parameter, refuse, too_little
from contracts.records import ColumnSpec, Result, TableRows, TableSpec
from procedures.analysis.statistics import mean_uncertainty, summarize


#: Longest wait a cooldown may ask for (lab time).
WEEK_S = 7 * 86400.0
#: Readings in the logged approach (one step and one table row each).
LOG_POINTS_MAX = 100_000
#: Readings once stable whose mean is the temperature held.
HELD_READINGS = 10


@dataclass(frozen=True)
class CooldownParameters:
    setpoint_k: float = parameter(4.2, unit="K", doc="stage temperature to regulate at", minimum=0.01, maximum=400.0)
    ramp_k_per_min: float = parameter(5.0, unit="K/min", doc="setpoint ramp rate", minimum=1e-3)
    tolerance_k: float = parameter(0.01, unit="K", doc="stable means within this of the setpoint", minimum=1e-5,
                                   maximum=10.0)
    hold_s: float = parameter(120.0, unit="s", doc="how long it must stay within tolerance", minimum=0.0,
                              maximum=WEEK_S)
    timeout_s: float = parameter(3600.0, unit="s", doc="give up after this much lab time", minimum=1.0,
                                 maximum=WEEK_S)
    log_interval_s: float = parameter(30.0, unit="s", doc="temperature log interval while approaching",
                                      minimum=0.1, maximum=WEEK_S)
    log_duration_s: float = parameter(600.0, unit="s", doc="length of the logged approach", minimum=0.0,
                                      maximum=WEEK_S)


class Cooldown(Procedure):
    name = "cooldown"
    minimum_valid_data = "the stage held within tolerance_k of the setpoint for hold_s"
    Parameters = CooldownParameters

    def declare(self, context: PlanContext | None = None):
        return None, {"temperature_log": TableSpec(
            {"time_s": ColumnSpec("s"), "temperature_k": ColumnSpec("K")}, axis="time_s", signal="temperature_k")}

    def check_parameters(self) -> None:
        p = self.parameters
        points = p.log_duration_s / p.log_interval_s + 1
        if points > LOG_POINTS_MAX:
            raise refuse(self.name, "log_duration_s, log_interval_s", f"{points:,.0f} log readings, above "
                                                                      f"{LOG_POINTS_MAX:,}")
        if p.hold_s > p.timeout_s:
            raise refuse(self.name, "hold_s, timeout_s", f"hold_s {p.hold_s:.4g} s cannot fit in timeout_s "
                                                         f"{p.timeout_s:.4g} s")

    def plan(self, context: PlanContext):
        p = self.parameters
        yield steps.SetTemperature(setpoint_k=p.setpoint_k, ramp_k_per_min=p.ramp_k_per_min)
        points = int(math.floor(p.log_duration_s / p.log_interval_s)) + 1
        times_s = np.arange(points) * p.log_interval_s
        temperatures_k = np.full(points, np.nan)
        # The logged approach's share of the run, in lab time (the hold follows it).
        log_share = p.log_duration_s / (p.log_duration_s + p.hold_s) if p.log_duration_s + p.hold_s > 0 else 1.0
        for k in range(points):
            if k:
                yield steps.Wait(duration_s=p.log_interval_s)
            temperatures_k[k] = yield steps.ReadTemperature()
            # One row per reading: a run killed during a long approach keeps its log.
            yield steps.Archive(TableRows("temperature_log", {"time_s": (times_s[k:k + 1], "s"),
                                                              "temperature_k": (temperatures_k[k:k + 1], "K")}))
            yield steps.Progress(fraction=log_share * (k + 1) / points,
                                 message=f"reading {k + 1} of {points}: {temperatures_k[k]:.3f} K")
        final_k = yield steps.WaitTemperatureStable(
            setpoint_k=p.setpoint_k, tolerance_k=p.tolerance_k, hold_s=p.hold_s,
            timeout_s=p.timeout_s, poll_s=min(5.0, max(p.hold_s / 10.0, 0.1)))
        # Minimum of valid data: the stage held at the setpoint (a timeout fails in the step).
        if not context.dry_run and not abs(float(final_k) - p.setpoint_k) <= p.tolerance_k:
            raise too_little(self.name, f"the stage within {p.tolerance_k:g} K of {p.setpoint_k:g} K",
                             f"{float(final_k):.4g} K")
        # The temperature held: the mean of further readings at the setpoint, with the interval
        # their scatter gives (the regulation's, not the sensor calibration's).
        poll_s = min(5.0, max(p.hold_s / 10.0, 0.1))
        held_k = np.full(HELD_READINGS, np.nan)
        for k in range(HELD_READINGS):
            if k:
                yield steps.Wait(duration_s=poll_s)
            held_k[k] = yield steps.ReadTemperature()
        held = summarize(held_k)
        interval = mean_uncertainty(held)
        method = (f"{interval.method} of readings every {poll_s:g} s once stable; the sensor's calibration "
                  "uncertainty is not included")
        yield steps.Archive(Result("stable_temperature_k", held.mean, "K",
                                   uncertainty=dataclasses.replace(interval, method=method)))
        yield steps.Progress(fraction=1.0, message="stable")
