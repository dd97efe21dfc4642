"""A cryostat temperature controller's front panel and its control loop.

Lake Shore 336 and 372 personalities drive this model. The panel's loop has one form,
output % = p·(e + i·1e-3·∫e dt + d·de/dt) with e in kelvin, ∫e dt in K·s and de/dt in K/s;
each personality converts its manual's P, I, D into p, i, d (the 336's D is a percentage of a
quarter of the integral time, the 372's I an integral time in seconds). The heater delivers
output % of its range's power into the stage.

Each sensor input keeps a min/max capture (Lake Shore 336 `MNMXRST`, `MDAT?`): the lowest and
highest stage temperature since the capture was last reset, followed over every step of the
thermal model's own integration, not only where a catch-up ends, so an excursion that begins
and ends between two queries is captured as it was. A heater-off drift is one implicit step of
constant power, along which the single-node stage moves monotonically, so its two ends are its
extremes; a running loop reports the lowest and highest temperature of every control interval
(`_kernel_thermal`). The capture follows the modelled stage, without the readings' noise; lab
time skipped by a clock slip is not seen (the stage did not move in it).
"""

from __future__ import annotations

import copy

import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from sim_backend.physics import _kernel_thermal as kt
from sim_backend.physics import thermal

OutputMode = Literal["off", "closed_loop", "zone", "open_loop"]

log = logging.getLogger(__name__)

#: Control intervals per kernel call: the wall-time budget is checked between calls (~10 ms
#: apart at most while the loop is in a transient).
CATCH_UP_CHUNK_STEPS = 2000
#: Wall time one catch-up may take on a bench whose lab clock runs by itself (see
#: `TemperatureControllerPanel.advance_to`); set on the panel by the Lake Shore personalities.
CATCH_UP_WALL_BUDGET_S = 0.5
_loop_kernel_compiled = False      # per process: see TemperatureControllerPanel.compile_loop_kernel

#: `initial_temperature_k` value (and default) meaning the stage's no-load equilibrium.
BASE = "base"


def initial_temperature_k(settings: dict, stage: thermal.StageParams, key: str = "initial_temperature_k") -> float:
    """The stage's starting temperature from an emulator's station-file settings.

    A number of kelvin (> 0), or ``base`` (the default): the stage's no-load equilibrium, where
    it stays with the heater off, so readings do not depend on when (in wall time) they are taken.
    ValueError naming the key for anything else.
    """
    value = settings.get(key, BASE)
    if value == BASE:
        return thermal.equilibrium_temperature_k(stage, 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"emulator.{key}: expected a temperature in kelvin > 0 or {BASE!r} "
                         f"(the stage's no-load equilibrium), got {value!r}")
    return float(value)


@dataclass
class HeaterOutput:
    mode: OutputMode = "off"
    control_input: str = "A"
    range_index: int = 0                   # 0 = off, then the controller's ranges
    setpoint_k: float = 0.0
    ramp_enabled: bool = False
    ramp_rate_k_per_min: float = 0.0
    p: float = 50.0
    i: float = 20.0
    d: float = 0.0
    manual_output_pct: float = 0.0
    output_pct: float = 0.0                # what the heater delivers now
    ramping_setpoint_k: float | None = None  # the setpoint the loop follows while ramping
    integral_k_s: float = 0.0
    last_error_k: float = 0.0

    @property
    def ramping(self) -> bool:
        return self.ramp_enabled and self.ramping_setpoint_k is not None \
            and self.ramping_setpoint_k != self.setpoint_k


@dataclass
class SensorInput:
    noise_k_rms: float = 1e-3
    #: Min/max capture: lowest and highest stage temperature since the last reset, K.
    lowest_k: float = math.nan
    highest_k: float = math.nan

    def capture(self, low_k: float, high_k: float) -> None:
        self.lowest_k = low_k if math.isnan(self.lowest_k) else min(self.lowest_k, low_k)
        self.highest_k = high_k if math.isnan(self.highest_k) else max(self.highest_k, high_k)


@dataclass
class TemperatureControllerPanel:
    """Controller plus the stage it regulates; `advance_to` integrates both through lab time."""

    stage: thermal.StageParams
    state: thermal.ThermalState
    range_powers_w: tuple[float, ...]      # index 0 = off
    inputs: dict[str, SensorInput]
    outputs: dict[int, HeaterOutput]
    control_interval_s: float = 0.1        # the loop's update period: the 336 updates its PID at ~10 Hz
    #: Injected heat loads (fridge excursions): (start lab s, stop lab s, heat W).
    excursions: list[tuple[float, float, float]] = field(default_factory=list)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    #: Wall seconds one `advance_to` may work before skipping the rest (None: no limit, exact).
    max_catch_up_wall_s: float | None = None
    slipped_s: float = 0.0                 # lab time skipped by clock slips, s
    slips: int = 0

    def __post_init__(self) -> None:
        self.reset_extremes()              # the capture runs from power-up

    def reset_extremes(self) -> None:
        """Every input's min/max capture starts afresh at the present stage temperature."""
        for sensor in self.inputs.values():
            sensor.lowest_k = sensor.highest_k = self.state.temperature_k

    def extremes_k(self, input_name: str) -> tuple[float, float]:
        """(lowest, highest) stage temperature an input's capture saw since its last reset."""
        sensor = self.inputs[input_name]
        return sensor.lowest_k, sensor.highest_k

    def _capture(self, low_k: float, high_k: float) -> None:
        for sensor in self.inputs.values():
            sensor.capture(low_k, high_k)

    def set_setpoint(self, output: int, setpoint_k: float) -> None:
        heater = self.outputs[output]
        if heater.ramp_enabled and heater.ramp_rate_k_per_min > 0:
            if heater.ramping_setpoint_k is None:
                heater.ramping_setpoint_k = self.state.temperature_k
        else:
            heater.ramping_setpoint_k = setpoint_k
        heater.setpoint_k = setpoint_k

    def reading_k(self, input_name: str) -> float:
        noise_k = self.inputs[input_name].noise_k_rms * self.rng.standard_normal()
        return max(self.state.temperature_k + noise_k, 0.0)

    def heater_power_w(self) -> float:
        return sum(self.range_powers_w[h.range_index] * h.output_pct / 100.0
                   for h in self.outputs.values() if h.range_index > 0)

    def excursion_power_w(self, time_s: float) -> float:
        return sum(heat_w for start_s, stop_s, heat_w in self.excursions if start_s <= time_s < stop_s)

    def _next_boundary_s(self, time_s: float, now_s: float) -> float:
        """The next excursion start or end after time_s (or now_s): steps must not straddle one."""
        edges = [t for start_s, stop_s, _ in self.excursions for t in (start_s, stop_s) if time_s < t < now_s]
        return min(edges, default=now_s)

    def advance_to(self, now_s: float) -> None:
        """Run the loop and the stage's thermal model up to lab time now_s.

        The loop runs at its own update period (`control_interval_s`, the instrument's 10 Hz), in
        the compiled kernel (`physics/_kernel_thermal.py`); the results are the reference path's
        (`advance_to_reference`) to round-off. With `max_catch_up_wall_s` set (a bench whose lab
        clock runs by itself), one call works at most about that long: what is still left is
        skipped, the stage and loop resuming at now_s as they were (a clock slip, logged once
        and counted in `slipped_s`), so that a command is answered even when the machine cannot
        keep up with the clock.
        """
        budget_s = self.max_catch_up_wall_s
        started: float | None = None
        while self.state.time_s < now_s:
            extra_w = self.excursion_power_w(self.state.time_s)
            until_s = self._next_boundary_s(self.state.time_s, now_s)
            if self._loop_idle():
                self._drift(until_s, extra_w)
                continue
            self._run_kernel(until_s, extra_w, CATCH_UP_CHUNK_STEPS)
            if budget_s is not None and self.state.time_s < now_s:
                # Timed from the first chunk's end, so a first call's compilation is not counted.
                if started is None:
                    started = time.perf_counter()
                elif time.perf_counter() - started > budget_s:
                    self._slip(now_s)
                    return

    def advance_to_reference(self, now_s: float) -> None:
        """`advance_to` in plain Python, one control interval per `thermal.step` call (no work cap).

        The reference the compiled path is checked against (tests/physics/test_thermal_catch_up.py)."""
        while self.state.time_s < now_s:
            extra_w = self.excursion_power_w(self.state.time_s)
            until_s = self._next_boundary_s(self.state.time_s, now_s)
            if self._loop_idle():
                self._drift(until_s, extra_w)
                continue
            dt_s = min(self.control_interval_s, until_s - self.state.time_s)
            for heater in self.outputs.values():
                self._update_loop(heater, dt_s)
            self.state = thermal.step(self.state, self.stage, self.heater_power_w() + extra_w, dt_s,
                                      adaptive=False)
            self._capture(self.state.temperature_k, self.state.temperature_k)

    def compile_loop_kernel(self) -> None:
        """Run the loop kernel once on a copy of this panel: numba compiles it on its first call
        (seconds while its on-disk cache is cold, e.g. in a fresh clone), which would otherwise
        fall on the first command that needs it and could outlast a client's VISA timeout."""
        global _loop_kernel_compiled
        if _loop_kernel_compiled:
            return
        trial = copy.deepcopy(self)
        heater = next(iter(trial.outputs.values()), None)
        if heater is None:
            return
        heater.mode, heater.range_index, trial.max_catch_up_wall_s = "closed_loop", 1, None
        trial.advance_to(trial.state.time_s + 2 * trial.control_interval_s)
        _loop_kernel_compiled = True

    def _drift(self, until_s: float, extra_w: float) -> None:
        """No loop to run: the heaters are off and the implicit thermal step takes any span in one call."""
        for heater in self.outputs.values():
            heater.output_pct = 0.0
        start_k = self.state.temperature_k
        self.state = thermal.step(self.state, self.stage, extra_w, until_s - self.state.time_s)
        # Constant power on one thermal node: the path is monotonic, its ends are its extremes.
        self._capture(min(start_k, self.state.temperature_k), max(start_k, self.state.temperature_k))

    def _loop_idle(self) -> bool:
        return all(h.mode == "off" or h.range_index == 0 for h in self.outputs.values())

    def _run_kernel(self, until_s: float, extra_w: float, max_steps: int) -> None:
        """Up to max_steps control intervals towards until_s in the compiled kernel."""
        heaters = list(self.outputs.values())
        rows = np.zeros((len(heaters), kt.H_FIELDS))
        for row, heater in zip(rows, heaters):
            active = heater.mode != "off" and heater.range_index != 0
            row[kt.H_MODE] = (kt.MODE_OFF if not active else
                              kt.MODE_OPEN if heater.mode == "open_loop" else kt.MODE_PID)
            row[kt.H_POWER] = self.range_powers_w[heater.range_index] if active else 0.0
            row[kt.H_SETPOINT] = heater.setpoint_k
            ramp = heater.ramp_enabled and heater.ramping_setpoint_k is not None
            row[kt.H_RAMP] = 1.0 if ramp else 0.0
            row[kt.H_RAMP_SP] = heater.ramping_setpoint_k if ramp else 0.0
            row[kt.H_RATE] = heater.ramp_rate_k_per_min
            row[kt.H_P], row[kt.H_I], row[kt.H_D] = heater.p, heater.i, heater.d
            row[kt.H_MANUAL] = heater.manual_output_pct
            row[kt.H_INTEGRAL] = heater.integral_k_s
            row[kt.H_LAST_ERROR] = heater.last_error_k
            row[kt.H_OUTPUT] = heater.output_pct
        s = self.state
        x = np.array([s.temperature_k, s.time_s, s.heater_energy_j, s.parasitic_energy_j, s.cooling_energy_j,
                      s.temperature_k, s.temperature_k])
        stage, temps, powers = thermal.packed_stage(self.stage)
        status, _, _ = kt.closed_loop(stage, temps, powers, rows, x, float(until_s), float(self.control_interval_s),
                                      float(extra_w), int(max_steps))
        for row, heater in zip(rows, heaters):
            if row[kt.H_RAMP]:
                heater.ramping_setpoint_k = float(row[kt.H_RAMP_SP])
            if row[kt.H_MODE] == kt.MODE_PID:
                heater.integral_k_s = float(row[kt.H_INTEGRAL])
                heater.last_error_k = float(row[kt.H_LAST_ERROR])
            heater.output_pct = float(row[kt.H_OUTPUT])
        self.state = replace(s, temperature_k=float(x[kt.X_T]), time_s=float(x[kt.X_TIME]),
                             heater_energy_j=float(x[kt.X_HEATER_J]), parasitic_energy_j=float(x[kt.X_PARASITIC_J]),
                             cooling_energy_j=float(x[kt.X_COOLING_J]))
        self._capture(float(x[kt.X_T_MIN]), float(x[kt.X_T_MAX]))
        if status == kt.RUNAWAY:
            raise ValueError(f"{self.stage.name}: runaway temperature (heater "
                             f"{self.heater_power_w() + extra_w + self.stage.parasitic_w} W?)")

    def _slip(self, now_s: float) -> None:
        """Skip the rest of a catch-up: lab time moves to now_s, stage and loop stay as they are."""
        lag_s = now_s - self.state.time_s
        self.slipped_s += lag_s
        self.slips += 1
        if self.slips == 1:
            log.warning("%s: the temperature controller's model fell %.1f lab s behind the lab clock "
                        "(more than %.2f s of wall time for one catch-up) and skipped it: stage and loop "
                        "resume from where they were (clock slip; further slips are counted in slipped_s "
                        "and logged at debug level)", self.stage.name, lag_s, self.max_catch_up_wall_s)
        else:
            log.debug("%s: clock slip of %.1f lab s (%d so far, %.1f lab s in all)",
                      self.stage.name, lag_s, self.slips, self.slipped_s)
        self.state = replace(self.state, time_s=now_s)

    def _update_loop(self, heater: HeaterOutput, dt_s: float) -> None:
        if heater.mode == "off" or heater.range_index == 0:
            heater.output_pct = 0.0
            return
        if heater.mode == "open_loop":
            heater.output_pct = heater.manual_output_pct
            return
        target_k = heater.setpoint_k
        if heater.ramp_enabled and heater.ramping_setpoint_k is not None:
            step_k = heater.ramp_rate_k_per_min / 60.0 * dt_s
            gap_k = heater.setpoint_k - heater.ramping_setpoint_k
            heater.ramping_setpoint_k += float(np.clip(gap_k, -step_k, step_k))
            target_k = heater.ramping_setpoint_k
        error_k = target_k - self.state.temperature_k
        derivative = (error_k - heater.last_error_k) / dt_s
        heater.last_error_k = error_k
        unclamped = heater.p * (error_k + heater.i * 1e-3 * (heater.integral_k_s + error_k * dt_s)
                                + heater.d * derivative) + heater.manual_output_pct
        # Anti-windup: integrate only while the output is not pinned at a limit.
        if 0.0 < unclamped < 100.0:
            heater.integral_k_s += error_k * dt_s
        heater.output_pct = float(np.clip(unclamped, 0.0, 100.0))
