"""Keithley 2450 SMU as the bias source: the stock QCoDeS driver plus ramped, enveloped bias.

The bias never jumps: `set_current_a` steps the source level from where it is to the target
in at most `max_ramp_steps` steps of at most `max_step_a`, waiting step/rate between steps
(wall time: the instrument lives in real time), so the rate never exceeds the one asked for,
and that rate never exceeds the envelope's `bias_ramp_max_a_per_s`. Switching the output on or
off happens at zero current.

Commands (Keithley 2450 Reference Manual, 2450-901-01, section 14 "SCPI command reference"):
`:SOURce[1]:FUNCtion[:MODE] CURRent`, `:SOURce[1]:CURRent[:LEVel][:IMMediate][:AMPLitude]`,
`:SOURce[1]:CURRent:VLIMit[:LEVel]`, `:OUTPut[1][:STATe]`, `:SENSe[1]:FUNCtion[:ON]`,
`:MEASure[:<function>]? [<bufferName>]`; hardware sweeps: `:SOURce[1]:LIST:CURRent <list>`,
`:SOURce[1]:LIST:CURRent:APPend <list>`, `:SOURce[1]:SWEep:CURRent:LIST <startIndex>, <delay>, <count>,
<failAbort>, "<bufferName>"`, `:INITiate`, `*OPC?`, `:TRACe:CLEar`, `:TRACe:DATA? <start>, <end>,
"<bufferName>", READing`.

`sweep_current_a` lets the instrument step through a list itself (source delay = dwell per
point, one reading per point): no controller round trip per point, which is what switching
statistics need. The envelope is checked on every level and on the steepest step (including
the one from the present level) before anything is written.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from qcodes import validators as vals
from qcodes.instrument_drivers.Keithley import Keithley2450 as _StockKeithley2450

from drivers._common import RecoveringVisa
from lab.envelope import Envelope

#: Ramp rate used to bring the level to zero when none was asked for and the envelope sets none.
DEFAULT_RAMP_A_PER_S = 10e-6
#: Longest source list the 2450 holds; longer sweeps run as consecutive list sweeps.
LIST_POINTS_MAX = 2500
#: Values per list command (keeps each command line short).
LIST_CHUNK = 100
#: Sweep dwell limits: the 2450's source delay is 50 us .. 10 ks.
DWELL_MIN_S, DWELL_MAX_S = 50e-6, 1e4


class Keithley2450(RecoveringVisa, _StockKeithley2450):
    """BiasSource role on a Keithley 2450 (current source, voltage sense)."""

    def __init__(self, name: str, address: str, *, envelope: Envelope | None = None,
                 max_step_a: float = 1e-6, max_ramp_steps: int = 50, **kwargs: Any) -> None:
        self.envelope = envelope or Envelope("bias_source")
        super().__init__(name, address, **kwargs)
        self.remember_address(address, kwargs.get("visalib"))
        self.ramp_step_max = self.add_parameter(
            "ramp_step_max", unit="A", vals=vals.Numbers(1e-12, 1e-3), initial_value=max_step_a,
            get_cmd=None, set_cmd=None, docstring="Largest single step of a bias ramp.")
        self.ramp_steps_max = self.add_parameter(
            "ramp_steps_max", unit="", vals=vals.Ints(1, 1000), initial_value=max_ramp_steps,
            get_cmd=None, set_cmd=None, docstring="Most steps in one bias ramp (bounds its duration).")
        for module in self.submodules.values():
            if "user_delay" in getattr(module, "parameters", {}):
                # The stock query reads `...:DELay:USER<user_number>?` with user_number unset
                # (`USERNone?`): a malformed header that only stalls a snapshot.
                module.parameters["user_delay"].snapshot_exclude = True
        self._compliance_v: float | None = None
        self._last_ramp_a_per_s: float | None = None
        self._output_on: bool | None = None

    # --- role: BiasSource -------------------------------------------------------------------
    def set_compliance_v(self, voltage_v: float) -> None:
        self.envelope.check_at_most("compliance_max_v", voltage_v, "compliance voltage", "V")
        self._ensure_current_source()
        self.write(f":SOUR:CURR:VLIM {voltage_v:.6g}")
        self._compliance_v = voltage_v
        self.raise_on_errors("set_compliance_v")

    def set_current_a(self, current_a: float, *, ramp_a_per_s: float) -> None:
        self.envelope.check_bias(current_a, ramp_a_per_s)
        self._ensure_current_source()
        self._ramp_to(current_a, ramp_a_per_s)
        self._last_ramp_a_per_s = ramp_a_per_s
        self.raise_on_errors("set_current_a")  # also waits until the last step is applied

    def current_a(self) -> float:
        if not self._output_is_on():
            return 0.0
        return self.source_level_a()

    def measure_voltage_v(self) -> float:
        if not self._output_is_on():
            raise RuntimeError(f"{self.name}: the output is off; switch it on to measure a voltage")
        if self.sense_function.get_latest() != "voltage":
            self.sense_function("voltage")
        return self.ask_parsed(":MEAS:VOLT?", float)

    def sweep_current_a(self, levels_a: Sequence[float], *, dwell_s: float) -> np.ndarray:
        """Step through levels_a on the instrument, dwell_s per level, one voltage reading each.

        The output must be on; afterwards it stays at the last level."""
        levels = np.asarray(levels_a, dtype=float).ravel()
        if levels.size == 0:
            return np.zeros(0)
        if not DWELL_MIN_S <= dwell_s <= DWELL_MAX_S:
            raise ValueError(f"{self.name}: sweep dwell {dwell_s!r} s is outside {DWELL_MIN_S}..{DWELL_MAX_S} s; "
                             "nothing was written")
        if not np.all(np.isfinite(levels)):
            raise ValueError(f"{self.name}: sweep levels must be finite; nothing was written")
        start_a = self.source_level_a()
        steepest_a = float(np.max(np.abs(np.diff(np.concatenate([[start_a], levels])))))
        self.envelope.check_bias(float(levels[np.argmax(np.abs(levels))]), max(steepest_a / dwell_s, 1e-300))
        if not self._output_is_on():
            raise RuntimeError(f"{self.name}: the output is off; switch it on before a sweep")
        self._ensure_current_source()
        if self.sense_function.get_latest() != "voltage":
            self.sense_function("voltage")
        readings = [self._list_sweep(levels[k:k + LIST_POINTS_MAX], dwell_s)
                    for k in range(0, levels.size, LIST_POINTS_MAX)]
        self.raise_on_errors("sweep_current_a")
        return np.concatenate(readings)

    def _list_sweep(self, levels: np.ndarray, dwell_s: float) -> np.ndarray:
        for k in range(0, levels.size, LIST_CHUNK):
            values = ",".join(f"{v:.9g}" for v in levels[k:k + LIST_CHUNK])
            self.write(f":SOUR:LIST:CURR{':APP' if k else ''} {values}")
        self.write(':TRAC:CLE "defbuffer1"')
        self.write(f':SOUR:SWE:CURR:LIST 1, {dwell_s:.6g}, 1, OFF, "defbuffer1"')
        self.write(":INIT")
        # The sweep runs on the instrument: wait for it with a timeout that covers its duration.
        with self.timeout.set_to(max(self.timeout() or 0.0, 10.0 + 2.0 * levels.size * dwell_s)):
            self.ask("*OPC?")
        def readings(answer: str) -> np.ndarray:
            values = np.array([float(v) for v in answer.split(",")])
            if values.size != levels.size:
                raise ValueError(f"a sweep of {levels.size} points returned {values.size} readings")
            return values

        # The buffer keeps the readings: a garbled reply is read again.
        return self.ask_parsed(f':TRAC:DATA? 1, {levels.size}, "defbuffer1", READ', readings)

    def set_output_enabled(self, enabled: bool) -> None:
        if enabled:
            self._check_compliance_in_envelope()
        self._ensure_current_source()
        self._ramp_to(0.0, self._safe_ramp_a_per_s())
        self.write(f":OUTP {'ON' if enabled else 'OFF'}")
        self._output_on = enabled
        self.raise_on_errors("set_output_enabled")

    def safe_state(self) -> None:
        self.set_output_enabled(False)

    # --- helpers ----------------------------------------------------------------------------
    def source_level_a(self) -> float:
        """The programmed source current (whether or not the output is on)."""
        return self.ask_parsed(":SOUR:CURR?", float)

    def ramp_plan(self, start_a: float, stop_a: float, ramp_a_per_s: float) -> tuple[list[float], float]:
        """Levels to write and the wait before each one, in seconds."""
        span_a = abs(stop_a - start_a)
        if span_a == 0.0:
            return [], 0.0
        steps = min(max(math.ceil(span_a / self.ramp_step_max() - 1e-9), 1), self.ramp_steps_max())
        levels = [start_a + (stop_a - start_a) * k / steps for k in range(1, steps + 1)]
        return levels, span_a / steps / ramp_a_per_s

    def _ramp_to(self, target_a: float, ramp_a_per_s: float) -> None:
        levels, wait_s = self.ramp_plan(self.source_level_a(), target_a, ramp_a_per_s)
        for level_a in levels:
            # Wait before each step, so back-to-back ramps cannot exceed the rate either.
            time.sleep(wait_s)
            self.write(f":SOUR:CURR {level_a:.9g}")

    def _ensure_current_source(self) -> None:
        if self.ask(":SOUR:FUNC?").strip().upper() not in ("CURR", "CURRENT"):
            if self._output_is_on():
                raise RuntimeError(f"{self.name}: refusing to switch the source function to current "
                                    "while the output is on in voltage mode; nothing was written")
            self.write(":SOUR:FUNC CURR")
            self.write(":SOUR:CURR 0")
            self.source_function.cache.set("current")

    def _check_compliance_in_envelope(self) -> None:
        if self.envelope.limit("compliance_max_v") is None:
            return
        present_v = self._compliance_v if self._compliance_v is not None else self.ask_parsed(":SOUR:CURR:VLIM?", float)
        self.envelope.check_at_most("compliance_max_v", present_v, "compliance voltage (set it first)", "V")

    def _safe_ramp_a_per_s(self) -> float:
        limit = self.envelope.limit("bias_ramp_max_a_per_s")
        return self._last_ramp_a_per_s or (limit if limit is not None else DEFAULT_RAMP_A_PER_S)

    def _output_is_on(self) -> bool:
        self._output_on = self.ask(":OUTP?").strip() in ("1", "ON")
        return self._output_on

    def reapply_role_settings(self) -> None:
        if self._compliance_v is not None:
            if self.ask(":SOUR:FUNC?").strip().upper() not in ("CURR", "CURRENT"):
                self.write(":SOUR:FUNC CURR")
            self.write(f":SOUR:CURR:VLIM {self._compliance_v:.6g}")
