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

Below the verbs, `write_rules` is the SMU's part of the write-path guard: every source level,
list entry, list sweep, compliance and output switch any code sends is checked there, rises
against the ramp limit too; voltage sourcing and recalled setups are refused, and the output goes
on only with the source function known to be current. A ramp starts from
the level last commanded, cross-checked with the instrument's reading (`ramp_start_a`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from qcodes import validators as vals
from qcodes.instrument_drivers.Keithley import Keithley2450 as _StockKeithley2450

from drivers._common import SAFE_STATE_ATTEMPTS, InstrumentError, MalformedReplyError, RecoveringVisa
from drivers._write_guard import (
    Admission, Learner, Rule, forget, number, numbers, only, refuse, switch, unknown, whole_number,
)
from contracts.envelope import Envelope, EnvelopeError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Ramp rate used to bring the level to zero when none was asked for and the envelope sets none.
DEFAULT_RAMP_A_PER_S = 10e-6
#: Longest source list the 2450 holds; longer sweeps run as consecutive list sweeps.
LIST_POINTS_MAX = 2500
#: Values per list command (keeps each command line short).
LIST_CHUNK = 100
#: Sweep dwell limits: the 2450's source delay is 50 us .. 10 ks.
DWELL_MIN_S, DWELL_MAX_S = 50e-6, 1e4
#: A reading agrees with the commanded level within this (the source's setting resolution).
LEVEL_AGREEMENT_A = 1e-9

#: What the write guard remembers of the SMU (keys of `WriteGuard.state`).
LEVEL_A, LEVEL_AT_S, OUTPUT_ON, LIST_A = "source_level_a", "source_level_at_s", "output_on", "source_list_a"
#: The guard's record of the compliance, and of the list sweep last set: (levels, dwell, count).
COMPLIANCE_V, SWEEP = "compliance_v", "list_sweep"
#: The source function ("current" or "voltage"): an output switched on puts out that function's
#: level, and a voltage level (set at the front panel, or by *RST: 0 V) is no current the
#: envelope bounds.
SOURCE_FUNCTION = "source_function"
FUNCTION_REPLIES = {"CURR": "current", "CURRENT": "current", "VOLT": "voltage", "VOLTAGE": "voltage"}
#: The current source's ranges (`:SOURce[1]:CURRent:RANGe` selects the smallest that holds its
#: value). On a fixed range a level's accuracy is that range's (±(0.067 % + 900 µA) on 1 A: the
#: 2450 datasheet, SPEC-2450 Rev. A) and the output-off state limits at 10 % of it: no range wider
#: than the envelope's largest current needs.
CURRENT_RANGES_A = (10e-9, 100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0)


def _function_of(reply: str) -> str | None:
    """A `:SOUR:FUNC?` reply's source function ("current", "voltage"); None for anything else."""
    return FUNCTION_REPLIES.get(reply.strip().strip('"').upper())


def _is_decimal(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def ramp_start_a(commanded_a: float | None, read_a: float | None, limit_a: float | None) -> tuple[float, str]:
    """Where a ramp starts, and a note when the reading and the commanded level disagree.

    The level last commanded is known (every level went through the write guard); the reading
    is a cross-check. A reading that is not finite or lies outside the envelope is implausible
    (nothing could have put it there) and is ignored. When the two disagree the true level is
    one of them, so the ramp starts from the one nearer zero (with opposite signs: from 0 A):
    its every step then lowers |I| whichever is true. With no level commanded, a plausible
    reading is the start; otherwise 0 A, the one level that can only lower |I|.
    """
    plausible = read_a is not None and math.isfinite(read_a) and (
        limit_a is None or abs(read_a) <= limit_a * (1 + 1e-9))
    if commanded_a is None:
        if plausible:
            return float(read_a), ""  # type: ignore[arg-type]
        return 0.0, (f"source level unknown and its reading {read_a!r} A implausible: "
                     "set 0 A directly, which can only lower |I|")
    if not plausible:
        return commanded_a, (f"source reading {read_a!r} A implausible; ramped from the "
                             f"commanded {commanded_a:.6g} A")
    if abs(read_a - commanded_a) <= max(LEVEL_AGREEMENT_A, 1e-6 * abs(commanded_a)):  # type: ignore[operator]
        return commanded_a, ""
    start_a = (min(commanded_a, read_a, key=abs) if commanded_a * read_a >= 0 else 0.0)  # type: ignore[operator]
    return start_a, (f"source reading {read_a:.6g} A disagrees with the commanded {commanded_a:.6g} A: "
                     f"ramped from {start_a:.6g} A, which can only lower |I|")


def clamped_to_envelope_a(start_a: float, limit_a: float | None) -> tuple[float, str]:
    """A ramp never commands a level outside the envelope, not even on its way down: from a
    level above the limit (the envelope was tightened while the source held it) it steps to
    the limit first, which lowers |I|."""
    if limit_a is None or abs(start_a) <= limit_a:
        return start_a, ""
    return math.copysign(limit_a, start_a), (f"source at {start_a:.6g} A, outside the envelope "
                                             f"(bias_current_max_a = {limit_a:.6g} A): stepped to the limit first")


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
        #: When the last level a ramp wrote was confirmed (its exchange, error-queue read
        #: included, returned): the instrument had run it by then.
        self._level_confirmed_s = -math.inf

    # --- role: BiasSource -------------------------------------------------------------------
    def set_compliance_v(self, voltage_v: float) -> None:
        self.envelope.check_at_most("compliance_max_v", voltage_v, "compliance voltage", "V")
        self._ensure_current_source()
        self.write_role_setting("_compliance_v", voltage_v, lambda: self._write_compliance(voltage_v))
        self.raise_on_errors("set_compliance_v")

    def _write_compliance(self, voltage_v: float) -> None:
        self.write(f":SOUR:CURR:VLIM {voltage_v:.6g}")

    def set_current_a(self, current_a: float, *, ramp_a_per_s: float) -> None:
        self.envelope.check_bias(current_a, ramp_a_per_s)
        self._ensure_current_source()

        def ramp() -> None:
            self._ramp_to(current_a, ramp_a_per_s)
            self.raise_on_errors("set_current_a")  # also waits until the last step is applied
        # Ramped again from the level read back if the link was lost on the way, its last report
        # included: a level set at the front panel while it was down stood while the verb returned.
        self.write_whole(ramp)
        self._last_ramp_a_per_s = ramp_a_per_s

    def current_a(self) -> float:
        if not self._output_is_on():
            return 0.0
        return self.source_level_a()

    def measure_voltage_v(self) -> float:
        if not self._output_is_on():
            raise RuntimeError(f"{self.name}: the output is off; switch it on to measure a voltage")
        self._ensure_sensing_voltage()
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
        self._require_output_on("")
        self._ensure_current_source()
        self._ensure_sensing_voltage()
        readings = [self._list_sweep(levels[k:k + LIST_POINTS_MAX], dwell_s)
                    for k in range(0, levels.size, LIST_POINTS_MAX)]
        self.raise_on_errors("sweep_current_a")
        return np.concatenate(readings)

    def _require_output_on(self, why: str) -> None:
        """The output read on, or RuntimeError: a sweep does not switch it on itself."""
        if not self._output_is_on():
            raise RuntimeError(f"{self.name}: the output is off{why}; switch it on before a sweep")

    def _list_sweep(self, levels: np.ndarray, dwell_s: float) -> np.ndarray:
        for attempt in (1, 2):
            links_lost = self.links_lost
            try:
                for k in range(0, levels.size, LIST_CHUNK):
                    values = ",".join(f"{v:.9g}" for v in levels[k:k + LIST_CHUNK])
                    self.write(f":SOUR:LIST:CURR{':APP' if k else ''} {values}")
                self.write(':TRAC:CLE "defbuffer1"')
                if unknown(self.write_guard.state, LEVEL_A):
                    self.source_level_a()     # set aside with a link lost before: read again
                # So is the output state (the front panel may have switched it off meanwhile): a
                # sweep from an output off starts from 0 A, which the guard would refuse here.
                if unknown(self.write_guard.state, OUTPUT_ON):
                    self._require_output_on(" (switched off while the link was down)")
                self.write(f':SOUR:SWE:CURR:LIST 1, {dwell_s:.6g}, 1, OFF, "defbuffer1"')
                # The instrument makes the first step as :INIT runs, not a dwell after the level before.
                time.sleep(self.sweep_first_wait_s(float(levels[0])))
                self.write(":INIT")
                break
            except EnvelopeError:
                # A link lost on the way set the list, the sweep and the level aside (the
                # instrument may have been reset meanwhile): the sweep is set up again, once.
                if self.links_lost == links_lost or attempt == 2:
                    raise
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
        # Read until two replies agree: one reply garbled into the other function (VOLT read as
        # CURR) made `_ensure_current_source` refuse below with a voltage output left on.
        if self._source_function(agreed=True) != "current":
            # Found sourcing voltage (set by hand): no current ramp applies, and the guard
            # refuses voltage levels, so the output goes off at once.
            self.write(":OUTP OFF")
            self._output_on = False
        try:
            self.set_output_enabled(False)
        except Exception:
            # The ramp down failed (a range fixed at the panel below the level refuses every
            # step): off at once, a fall the guard always admits, rather than left biasing the
            # chip; the failure is still reported.
            self.write(":OUTP OFF")
            self._output_on = False
            raise
        # The switch-off's report lost with the link (or garbled) leaves the guard not knowing
        # the output off: written again until it does, or said.
        for _ in range(SAFE_STATE_ATTEMPTS):
            if self.write_guard.state.get(OUTPUT_ON) is False:
                return
            self.write(":OUTP OFF")
        if self.write_guard.state.get(OUTPUT_ON) is not False:
            raise InstrumentError(f"{self._who()}: safe_state switched the output off {SAFE_STATE_ATTEMPTS + 1} "
                                  "times, and the instrument's report after each was lost or garbled: the output "
                                  "may still be on")

    # --- helpers ----------------------------------------------------------------------------
    def source_level_a(self) -> float:
        """The programmed source current (whether or not the output is on). A reading outside
        the envelope cannot be the level (none was ever commanded): it is taken for a reply
        split by line noise — `+1.20000` of `+1.200000E-05` — and read again after a resync."""
        limit_a = self.envelope.limit("bias_current_max_a")

        def parse(reply: str) -> float:
            level_a = float(reply)
            if not math.isfinite(level_a) or (limit_a is not None and abs(level_a) > limit_a * (1 + 1e-9)):
                raise ValueError(f"source level {reply.strip()[:40]!r} A lies outside the envelope")
            return level_a

        return self._read_state(LEVEL_A, ":SOUR:CURR?", parse)

    def _read_state(self, key: str, query: str, parse: Callable[[str], T]) -> T:
        """`query`'s value; asked until two replies agree while the guard does not know `key`,
        since it then learns it from them (a single garbled reply once taught it a level)."""
        if unknown(self.write_guard.state, key):
            return self.ask_agreed(query, parse)
        return self.ask_parsed(query, parse)

    def ramp_plan(self, start_a: float, stop_a: float, ramp_a_per_s: float) -> tuple[list[float], float]:
        """Levels to write and the wait before each one, in seconds."""
        span_a = abs(stop_a - start_a)
        if span_a == 0.0:
            return [], 0.0
        steps = min(max(math.ceil(span_a / self.ramp_step_max() - 1e-9), 1), self.ramp_steps_max())
        levels = [start_a + (stop_a - start_a) * k / steps for k in range(1, steps)] + [stop_a]
        return levels, span_a / steps / ramp_a_per_s

    def _ramp_to(self, target_a: float, ramp_a_per_s: float) -> None:
        # A step the instrument may not have taken (its error queue held an error after it, or
        # the reply was lost with the link) leaves the level unknown to the guard: the ramp reads
        # it back and is planned again from there (a bounded number of times), rather than
        # stepping on from a level that may not be the source's.
        for replans in range(self.ramp_steps_max() + 1):
            start_a, disagreed = self._ramp_start_a()
            levels, wait_s = self.ramp_plan(start_a, target_a, ramp_a_per_s)
            if disagreed or (levels and start_a != self.write_guard.commanded(LEVEL_A)):
                # Say where the ramp starts, a move that only lowers |I|: also when it is the
                # target, or the level last commanded, which the source did not hold.
                levels.insert(0, start_a)
            for level_a in levels:
                # Wait before each step, so back-to-back ramps cannot exceed the rate either.
                time.sleep(wait_s)
                self._write_level(level_a)
                if self.write_guard.commanded(LEVEL_A) is None and replans < self.ramp_steps_max():
                    break                 # plan again from the level read back
            else:
                break
        if self.write_guard.commanded(LEVEL_A) != float(f"{target_a:.9g}"):
            # The start was taken as the target (or 0 A was the only safe move): say it once, so
            # the commanded level is known from here on.
            self._write_level(target_a)

    def _write_level(self, level_a: float) -> None:
        """One level of a ramp; the instrument has run it once this returns (its error queue
        was read after it), the time `sweep_first_wait_s` counts from."""
        self.write(f":SOUR:CURR {level_a:.9g}")
        self._level_confirmed_s = time.monotonic()

    def _ramp_start_a(self) -> tuple[float, bool]:
        """Where a ramp starts, and whether the source's reading disagreed with the guard's record."""
        commanded_a = self.write_guard.commanded(LEVEL_A)     # before the reading can teach it
        try:
            read_a: float | None = self.source_level_a()
            if commanded_a is not None and unknown(self.write_guard.state, LEVEL_A):
                # The link was reopened during the read, which set the commanded level aside (the
                # source may have been reset meanwhile): read again, until the guard learns it.
                commanded_a, read_a = None, self.source_level_a()
        except MalformedReplyError as error:
            read_a = None
            log.warning("%s: %s", self._who(), error)
        limit_a = self.envelope.limit("bias_current_max_a")
        start_a, note = ramp_start_a(commanded_a, read_a, limit_a)
        if note:
            self._unsynced = "a reading disagreed with the level last commanded"   # maybe another query's reply
        start_a, clamp_note = clamped_to_envelope_a(start_a, limit_a)
        for text in filter(None, (note, clamp_note)):
            log.warning("%s: %s", self._who(), text)
            self.safety_notes.append(f"{self.name}: {text}")
        return start_a, bool(note)

    def _source_function(self, *, agreed: bool = False) -> str:
        """ "current" or "voltage"; any other reply is malformed (read again after a resync);
        asked until two replies in a row agree when `agreed` or when the guard does not know it
        (it learns it from them, and switches the output on only with the function known)."""
        def parse(reply: str) -> str:
            function = _function_of(reply)
            if function is None:
                raise ValueError(f"not a source function: {reply[:40]!r}")
            return function
        if agreed:
            return self.ask_agreed(":SOUR:FUNC?", parse)
        return self._read_state(SOURCE_FUNCTION, ":SOUR:FUNC?", parse)

    def _ensure_sensing_voltage(self) -> None:
        def sense_function() -> str:
            try:
                return self.sense_function.get_latest()
            except KeyError as exc:    # a reply outside the stock parameter's mapping: garbled on the way
                raise ValueError(f"not a sense function: {exc}") from exc

        if self.read_parsed("the sense function", sense_function) != "voltage":
            self.sense_function("voltage")

    def _ensure_current_source(self) -> None:
        if self._source_function() != "current":
            if self._output_is_on():
                raise RuntimeError(f"{self.name}: refusing to switch the source function to current "
                                    "while the output is on in voltage mode; nothing was written")
            self.write(":SOUR:FUNC CURR")
            self.write(":SOUR:CURR 0")
            self.source_function.cache.set("current")

    def _check_compliance_in_envelope(self) -> None:
        if self.envelope.limit("compliance_max_v") is None:
            return
        present_v = (self._compliance_v if self._compliance_v is not None
                     else self._read_state(COMPLIANCE_V, ":SOUR:CURR:VLIM?", float))
        self.envelope.check_at_most("compliance_max_v", present_v, "compliance voltage (set it first)", "V")
        # The compliance the output goes on with is a role setting from now on: a reconnect
        # re-applies it (21 V set at the front panel while the link was down stood otherwise).
        self._compliance_v = present_v

    def _safe_ramp_a_per_s(self) -> float:
        limit = self.envelope.limit("bias_ramp_max_a_per_s")
        return self._last_ramp_a_per_s or (limit if limit is not None else DEFAULT_RAMP_A_PER_S)

    def _output_is_on(self) -> bool:
        def parse(reply: str) -> bool:
            state = {"1": True, "ON": True, "0": False, "OFF": False}.get(reply.strip().upper())
            if state is None:
                raise ValueError(f"not an output state: {reply[:40]!r}")
            return state
        self._output_on = self._read_state(OUTPUT_ON, ":OUTP?", parse)
        return self._output_on

    # --- the write guard's rules (Keithley 2450 manual, section 14) ---------------------------
    def write_rules(self) -> list[Rule]:
        return [
            Rule("[:SOURce[1]]:CURRent[:LEVel][:IMMediate][:AMPLitude]", self._admit_level),
            Rule("[:SOURce[1]]:CURRent:VLIMit[:LEVel]", self._admit_compliance),
            Rule("[:SOURce[1]]:CURRent:RANGe", self._admit_current_range),
            Rule("[:SOURce[1]]:LIST:CURRent", self._admit_list(append=False)),
            Rule("[:SOURce[1]]:LIST:CURRent:APPend", self._admit_list(append=True)),
            Rule("[:SOURce[1]]:SWEep:CURRent:LIST", self._admit_list_sweep),
            Rule("[:SOURce[1]]:FUNCtion[:MODE]", self._admit_function),
            Rule(":OUTPut[1][:STATe]", self._admit_output),
            Rule(":INITiate[:IMMediate]", self._admit_initiate),
            # A trigger model template replaces the list sweep set before: :INIT no longer plays it.
            Rule(":TRIGger:LOAD", forget(SWEEP)),
            Rule("*RST", self._admit_reset),
            Rule("[:SOURce[1]]:SWEep:CURRent:LINear*", refuse("a linear sweep's levels are not checked step by "
                                                              "step; use a list sweep")),
            Rule("[:SOURce[1]]:SWEep:CURRent:LOG", refuse("a log sweep's levels are not checked step by step; "
                                                          "use a list sweep")),
            Rule("[:SOURce[1]]:VOLTage*", refuse("the bias is a current source; sourcing voltage is outside "
                                                 "the envelope")),
            Rule("[:SOURce[1]]:LIST:VOLTage*", refuse("the bias is a current source; sourcing voltage is "
                                                      "outside the envelope")),
            Rule("[:SOURce[1]]:SWEep:VOLTage*", refuse("the bias is a current source; sourcing voltage is "
                                                       "outside the envelope")),
            Rule("[:SOURce[1]]:CONFiguration:LIST:RECall", refuse("recalling a source configuration could "
                                                                  "apply levels outside the envelope")),
            # RECall, NEXT, PREVious: trigger-model blocks that apply a configuration list's entries
            Rule(":TRIGger:BLOCk:CONFig*", refuse("a trigger-model block that recalls a source configuration "
                                                  "could apply levels outside the envelope")),
            # Any other block (a shorter delay, a branch that repeats, a source block switching the
            # output on) changes the model the list sweep built: :INIT no longer plays the sweep checked.
            Rule(":TRIGger:BLOCk*", forget(SWEEP)),
            # ZERO: the output "off" is a 0 V source limited at the whole present current range (100 uA
            # for a level inside a 30 uA envelope); NORMal limits it at 10 % of the range.
            *(Rule(spelling, only(("NORM", "NORMAL", "HIMP", "HIMPEDANCE", "GUAR", "GUARD"),
                                  "would make the output, off, a 0 V source limited only at the whole present "
                                  "current range (the zero state)"))
              for spelling in (":OUTPut[1][:CURRent]:SMODe", ":OUTPut[1]:VOLTage:SMODe")),
            Rule(":ROUTe:TERMinals", self._admit_terminals),
            Rule(":SYSTem:POSetup", only(("RST",), "would recall a saved setup at the next power-up, levels the "
                                                   "guard never saw")),
            Rule("*LANG", only(("SCPI",), "would leave the driver (and its safe state) unable to reach the "
                                          "instrument from the next power-up")),
        ]

    def reply_learners(self) -> list[Learner]:
        def level(state: dict, reply: str) -> None:
            if unknown(state, LEVEL_A) and _is_decimal(reply):
                state[LEVEL_A], state[LEVEL_AT_S] = float(reply), time.monotonic()

        def output(state: dict, reply: str) -> None:
            if unknown(state, OUTPUT_ON) and reply.upper() in ("0", "1", "ON", "OFF"):
                state[OUTPUT_ON] = reply.upper() in ("1", "ON")

        def compliance(state: dict, reply: str) -> None:
            if unknown(state, COMPLIANCE_V) and _is_decimal(reply):
                state[COMPLIANCE_V] = float(reply)

        def function(state: dict, reply: str) -> None:
            if unknown(state, SOURCE_FUNCTION) and _function_of(reply) is not None:
                state[SOURCE_FUNCTION] = _function_of(reply)

        return [Learner("[:SOURce[1]]:CURRent[:LEVel][:IMMediate][:AMPLitude]", level),
                Learner(":OUTPut[1][:STATe]", output),
                Learner("[:SOURce[1]]:CURRent:VLIMit[:LEVel]", compliance),
                Learner("[:SOURce[1]]:FUNCtion[:MODE]", function)]

    def _largest_step_a(self) -> float:
        """The largest single step a ramp of this driver makes: the rate limit bounds steps over
        time, this bounds a step after an idle spell (a rate averaged over it would pass)."""
        limit_a = self.envelope.limit("bias_current_max_a") or 0.0
        return max(self.ramp_step_max(), 2 * limit_a / self.ramp_steps_max())

    def _check_rise(self, state: dict, from_a: float | None, to_a: float, over_s: float | None, what: str,
                    *, single_write: bool = True) -> None:
        """A step that raises |I| or crosses zero, with the output on (or possibly on), keeps to
        the ramp limit, and a single write also to the largest ramp step (a list sweep's steps
        are bounded by the rate over its dwell); from an unknown level only 0 A may be written."""
        if not state.get(OUTPUT_ON, True):
            return
        if from_a is None:
            if to_a == 0.0:
                return
            # The source may hold any level in the envelope, of either sign: any level but 0 A
            # could be a rise or a reversal of up to twice the limit.
            raise EnvelopeError(f"refused: {what} to {to_a:.6g} A from an unknown level (the source may hold any "
                                "level in the envelope, of either sign); read the level first or set 0 A; "
                                "nothing was written")
        if from_a * to_a >= 0 and abs(to_a) <= abs(from_a):
            return                        # neither a rise nor a crossing of zero
        step_a = abs(to_a - from_a)
        if single_write and step_a > self._largest_step_a() * (1 + 1e-9) + 1e-15:
            raise EnvelopeError(f"refused: {what} from {from_a:.6g} A "
                                f"to {to_a:.6g} A is a step of {step_a:.3g} A, above the largest ramp step "
                                f"{self._largest_step_a():.3g} A; nothing was written")
        rate_limit = self.envelope.limit("bias_ramp_max_a_per_s")
        if rate_limit is not None and over_s is not None and step_a > rate_limit * over_s * (1 + 1e-6) + 1e-15:
            raise EnvelopeError(f"refused: {what} to {to_a:.6g} A in {over_s:.3g} s rises faster than the safe "
                                f"envelope (bias_ramp_max_a_per_s = {rate_limit:.6g} A/s, {self.envelope.where}); "
                                "nothing was written")

    def _admit_level(self, admission: Admission) -> None:
        state, now_s = admission.state, time.monotonic()
        level_a = number(admission, 0, "bias current", "A")
        self.envelope.check_at_most("bias_current_max_a", level_a, "bias current", "A")
        self._check_rise(state, state.get(LEVEL_A), level_a, now_s - state.get(LEVEL_AT_S, -math.inf), "a step")
        state[LEVEL_A], state[LEVEL_AT_S] = level_a, now_s

    def _admit_compliance(self, admission: Admission) -> None:
        compliance_v = number(admission, 0, "compliance voltage", "V")
        self.envelope.check_at_most("compliance_max_v", compliance_v, "compliance voltage", "V")
        admission.state[COMPLIANCE_V] = compliance_v

    def _admit_current_range(self, admission: Admission) -> None:
        range_a = abs(number(admission, 0, "source range", "A"))
        limit_a = self.envelope.limit("bias_current_max_a")
        if limit_a is None:
            return
        widest_a = next((r for r in CURRENT_RANGES_A if r >= limit_a * (1 - 1e-9)), CURRENT_RANGES_A[-1])
        if range_a > widest_a * (1 + 1e-9):
            raise EnvelopeError(f"refused: source range {range_a:g} A: on a fixed range wider than the "
                                f"{widest_a:g} A one the envelope's {limit_a:g} A needs, a level's accuracy and the "
                                "output-off state's current limit are that range's (±0.9 mA and 100 mA on 1 A); "
                                "nothing was written")

    def _admit_list(self, *, append: bool):
        def check(admission: Admission) -> None:
            levels_a = numbers(admission, "list level", "A")
            for level_a in levels_a:
                self.envelope.check_at_most("bias_current_max_a", level_a, "list level", "A")
            if append and LIST_A not in admission.state:
                raise EnvelopeError("refused: appending to a source list this session never wrote (its levels "
                                    "are unknown); write the list first; nothing was written")
            admission.state[LIST_A] = (admission.state.get(LIST_A, ()) if append else ()) + tuple(levels_a)
            admission.state.pop(SWEEP, None)   # a sweep set before may now play the new list
        return check

    def _admit_list_sweep(self, admission: Admission) -> None:
        state = admission.state
        start = whole_number(admission, 0, "list start index")
        dwell_s = number(admission, 1, "sweep dwell", "s")
        count = whole_number(admission, 2, "sweep count") if len(admission.unit.arguments) > 2 else 1
        levels_a = state.get(LIST_A, ())[max(start, 1) - 1:]
        if not levels_a:
            raise EnvelopeError("refused: a list sweep with no checked list levels; nothing was written")
        sweep = levels_a, dwell_s, max(count, 1)
        self._check_sweep(state, sweep, at_init=False)   # refused here already, not only at :INIT
        state[SWEEP] = sweep

    def _check_sweep(self, state: dict, sweep: tuple, *, at_init: bool = True) -> None:
        """The sweep's steps from the present level, each within the ramp rate over its dwell;
        the first, which the instrument makes as :INIT runs, also over the time since the level
        before it (`sweep_first_wait_s`)."""
        levels_a, dwell_s, count = sweep
        path_a = [state.get(LEVEL_A), *levels_a * count]
        sweeping = {**state, OUTPUT_ON: True}           # :INIT switches the output on to sweep
        since_s = time.monotonic() - state.get(LEVEL_AT_S, -math.inf) if at_init else math.inf
        if state.get(OUTPUT_ON) is not True:
            # An output off (or possibly off: a link lost, the front panel) gives 0 A until :INIT
            # switches it on, at the programmed level, then the first point: a step from 0 A
            # made at once, as switching the output on would make it, and the first point none
            # of the time since the level was programmed. (An unknown level: the loop refuses.)
            if path_a[0] is not None:
                self._check_rise(sweeping, 0.0, path_a[0], None, "switching the output on to sweep")
            since_s = 0.0
        for k, (from_a, to_a) in enumerate(zip(path_a, path_a[1:])):
            self._check_rise(sweeping, from_a, to_a, min(dwell_s, since_s) if k == 0 else dwell_s,
                             "a list sweep step", single_write=False)

    def sweep_first_wait_s(self, first_a: float) -> float:
        """How long before :INIT may make a list sweep's first step, to `first_a`, from the level
        the guard holds: the step over the ramp limit, less the time since that level was set."""
        state, rate_limit = self.write_guard.state, self.envelope.limit("bias_ramp_max_a_per_s")
        level_a = state.get(LEVEL_A)
        if rate_limit is None or not isinstance(level_a, float):
            return 0.0
        # Timed from when the level was confirmed if a ramp wrote it: the guard's time is when
        # it was sent, and the instrument may have run it later (a loaded link), the step at
        # :INIT then coming sooner after it than the client counted.
        set_s = max(state.get(LEVEL_AT_S, -math.inf), self._level_confirmed_s)
        return max(0.0, abs(first_a - level_a) / rate_limit - (time.monotonic() - set_s))

    def _admit_function(self, admission: Admission) -> None:
        function = (admission.unit.arguments or ("",))[0].upper()
        if function not in ("CURR", "CURRENT"):
            raise EnvelopeError(f"refused: source function {function[:20]!r}: the bias is a current source; "
                                "nothing was written")
        if admission.state.get(OUTPUT_ON) is not False:
            # From voltage, with the output on, the source would jump to the current function's
            # level, which may have been set at the front panel to anything.
            raise EnvelopeError("refused: switching the source function while the output may be on puts out the "
                                "current function's level at once; read the output state or switch it off first; "
                                "nothing was written")
        admission.state.pop(LEVEL_A, None)     # the current function keeps a level of its own
        admission.state[SOURCE_FUNCTION] = "current"

    def _admit_output(self, admission: Admission) -> None:
        state, on = admission.state, switch(admission)
        if on and state.get(OUTPUT_ON) is not True:
            if state.get(SOURCE_FUNCTION) != "current":
                raise EnvelopeError("refused: switching the output on while the source function is not known to be "
                                    "current (a voltage source's level is outside the envelope); set it or read it "
                                    "first; nothing was written")
            level_a = state.get(LEVEL_A)
            if level_a is None:
                raise EnvelopeError("refused: switching the output on while the source level is unknown "
                                    "(set it first); nothing was written")
            self._check_compliance_for_output(state)
            self.envelope.check_at_most("bias_current_max_a", level_a, "bias current", "A")
            # From 0 A to the level at once: a step like any other.
            self._check_rise({**state, OUTPUT_ON: True}, 0.0, level_a, None, "switching the output on")
        state[OUTPUT_ON] = on

    def _check_compliance_for_output(self, state: dict) -> None:
        """An output going on (`:OUTP ON`, or a sweep's `:INIT`) needs a compliance this session
        set, or learnt from a reply, inside the envelope."""
        if COMPLIANCE_V not in state:
            raise EnvelopeError("refused: switching the output on with a compliance this session never set "
                                "(a reset restores 21 V); set it first; nothing was written")
        self.envelope.check_at_most("compliance_max_v", state[COMPLIANCE_V], "compliance voltage", "V")

    def _admit_initiate(self, admission: Admission) -> None:
        # The trigger model switches the output on and plays the list sweep last set, each time
        # from the level the source is at then.
        state = admission.state
        sweep = state.get(SWEEP)
        if sweep is None:
            raise EnvelopeError("refused: :INIT plays a sweep this session has not set (or whose list changed "
                                "since); set the list sweep first; nothing was written")
        if state.get(OUTPUT_ON) is not True:
            self._check_compliance_for_output(state)
        self._check_sweep(state, sweep)
        # The next rise is timed from :INIT, not from the sweep's last level (a dwell after each
        # before it): an emulated instrument plays the sweep in its accelerated lab time, and the
        # *OPC? a driver waits on returns a dwell after that level on a real one.
        state[LEVEL_A], state[LEVEL_AT_S] = sweep[0][-1], time.monotonic()
        state[OUTPUT_ON], state[SOURCE_FUNCTION] = True, "current"    # a current sweep sources current

    def _admit_terminals(self, admission: Admission) -> None:
        if admission.state.get(OUTPUT_ON) is not False:
            # The 2450 switches an output that is on off when the terminals change: at its level, and
            # behind the guard's record, which would then let :OUTP ON apply the level in one step.
            raise EnvelopeError("refused: switching the terminals while the output may be on switches it off at "
                                "its level, unrecorded; switch the output off first; nothing was written")

    def _admit_reset(self, admission: Admission) -> None:
        forget(LEVEL_A, LIST_A, COMPLIANCE_V, SWEEP)(admission)
        admission.state[OUTPUT_ON], admission.state[SOURCE_FUNCTION] = False, "voltage"   # *RST sources 0 V

    def reapply_role_settings(self) -> None:
        if self._compliance_v is not None:
            # Found sourcing voltage (set at the front panel while the link was down): back to
            # current only with the output off, or its level would be applied at once.
            self._ensure_current_source()
            self.write_whole(lambda: self._write_compliance(self._compliance_v))
