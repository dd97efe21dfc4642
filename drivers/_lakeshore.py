"""The TemperatureController role on Lake Shore controllers (336, 372), on the stock parameters.

Lake Shore's command set (Model 336 manual §6.6, Model 372 manual §6.12 "Command list"):
`KRDG? <input>`, `SETP <output>,<value>`, `RAMP <output>,<off/on>,<rate K/min>`,
`OUTMODE <output>,<mode>,<input>,...`, `RANGE <output>,<range>`, `MOUT <output>,0`, `HTR? <output>`, `*ESR?`.
The controllers keep no SCPI error queue: a bad command only sets *ESR bits, so after each
role verb the driver reads *ESR? and raises if a command or execution error bit is set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from drivers._common import SAFE_STATE_ATTEMPTS, InstrumentError, MalformedReplyError, RecoveringVisa
from drivers._write_guard import Admission, Learner, Rule, number, refuse, whole_number
from contracts.envelope import Envelope, EnvelopeError

#: *ESR bits: command error, execution error, device-dependent error, query error.
_ESR_ERROR_BITS = {0x20: "command error", 0x10: "execution error", 0x08: "device error", 0x04: "query error"}
#: Writes of a setpoint whose status report (*ESR?, cleared by reading it) arrived garbled.
SETPOINT_ATTEMPTS = 2

#: The stock QCoDeS output's HTRSET group (`lakeshore_base.LakeshoreBaseOutput.heater_group`),
#: in the Model 335's five-field layout: `HTRSET? <output>` answers
#: <output type>,<heater resistance>,<max current>,<max user current>,<current/power>.
STOCK_HTRSET_PARAMETERS = ("output_type", "output_heater_resistance", "output_max_current",
                           "output_max_user_current", "output_display")

#: INTYPE's last field, the preferred units a setpoint is read in (336: 1 kelvin, 2 Celsius, 3 sensor
#: units; 372: 1 kelvin, 2 ohms).
KELVIN_UNITS = 1
#: What the write guard learns of the control input (a key of `WriteGuard.state`): its preferred
#: units, from two `INTYPE?` replies alike; a reconnect sets it aside.
SETPOINT_UNITS = "setpoint_units"
#: What it learns of the regulating output's setpoint, from two `SETP?` replies alike read in
#: kelvin: (K, half a unit of the reply's last digit); the loop heats towards it once closed and
#: given a range. A setpoint write sets it aside.
SETPOINT_K = "setpoint_k"


def reply_resolution(reply: str) -> float:
    """The value of one unit in the last digit of a numeric reply (`+004.2000` → 1e-4,
    `1.45703E+00` → 1e-5); ValueError if it is no number."""
    mantissa, _, exponent = reply.strip().lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def parse_preferred_units(reply: str) -> int:
    """`INTYPE? <input>`'s last field, the preferred units; ValueError for anything else (read
    again). The 336 answers five fields, the 372 six: units last on both."""
    fields = reply.strip().split(",")
    if len(fields) < 5:
        raise ValueError(f"expected INTYPE's fields ending in the preferred units, got {reply!r}")
    return int(fields[-1])


class LakeshoreTemperatureRole(RecoveringVisa):
    """Role verbs shared by the Lake Shore drivers; subclasses pick output, input and range."""

    envelope: Envelope
    error_query = None            # Lake Shore keeps no error queue, only *ESR bits
    heater_range_on: str          # the stock driver's range name used while regulating
    #: The regulating output's ranges, name -> the number `RANGE` takes (the stock output's).
    heater_ranges: ClassVar[Mapping[str, int]]
    #: The range the station file chose for regulating (option `heater_range`), kept as given:
    #: the largest any write may switch on, whatever `regulating_range` is set to later.
    station_heater_range: str
    _last_setpoint: tuple[float, float | None] | None = None

    def role_output(self) -> Any:
        """The stock output submodule that regulates the stage."""
        raise NotImplementedError

    def role_sensor(self) -> Any:
        """The stock sensor channel submodule of the control input."""
        raise NotImplementedError

    def role_control_input(self) -> Any:
        """The control input as the stock OUTMODE `input_channel` parameter spells it."""
        raise NotImplementedError

    def heater_outputs(self) -> list[Any]:
        """Every stock output that can heat: safe state switches each off, whatever this session
        did (one may have been left on at the front panel)."""
        raise NotImplementedError

    # --- role: TemperatureController --------------------------------------------------------
    def read_temperature_k(self) -> float:
        return self.read_parsed("the control sensor's temperature", lambda: float(self.role_sensor().temperature()))

    def set_setpoint_k(self, temperature_k: float, *, ramp_k_per_min: float | None = None) -> None:
        self.envelope.check_temperature_k(temperature_k)
        if ramp_k_per_min is not None:
            if ramp_k_per_min <= 0:
                raise EnvelopeError(f"refused: setpoint ramp must be > 0 K/min, got {ramp_k_per_min!r}; "
                                    "nothing was written")
            self.envelope.check_at_most("setpoint_ramp_max_k_per_min", ramp_k_per_min, "setpoint ramp", "K/min")
        # Recorded first (a read-back lost with the link re-applied the setpoint before it).
        self.write_role_setting("_last_setpoint", (temperature_k, ramp_k_per_min),
                                lambda: self._write_setpoint_and_check(temperature_k, ramp_k_per_min))

    def _write_setpoint_and_check(self, temperature_k: float, ramp_k_per_min: float | None) -> None:
        for attempt in range(1, SETPOINT_ATTEMPTS + 1):
            self._write_setpoint(temperature_k, ramp_k_per_min)
            try:
                self.raise_on_status_errors("set_setpoint_k")
                return
            except MalformedReplyError:
                # The status arrived garbled, and reading it cleared it: written again and
                # checked again, as the safe state does, rather than the run ending on one byte.
                if attempt == SETPOINT_ATTEMPTS:
                    raise

    def heater_output_pct(self) -> float:
        return self.read_parsed("the heater output", lambda: float(self.role_output().output()))

    def safe_state(self) -> None:
        # Forgotten first: a reconnect while these go out must not re-apply the setpoint (and
        # switch the heater on again) before the range is off.
        self._last_setpoint = None
        for attempt in range(1, SAFE_STATE_ATTEMPTS + 1):
            self.role_output().output_range("off")      # the regulating output first: it is the one heating
            for output in self.heater_outputs():
                if output is not self.role_output():
                    output.output_range("off")
            reconnects = self.reconnects
            try:
                self.raise_on_status_errors("safe_state")  # a query: returns once the range is off
            except MalformedReplyError:
                if attempt == SAFE_STATE_ATTEMPTS:
                    raise
                continue            # the status arrived garbled, and reading it cleared it: off again
            if self.reconnects == reconnects or attempt == SAFE_STATE_ATTEMPTS:
                return
            # The status reply was lost with the link: the one asked again after the reconnect
            # reads clear whatever the ranges' writes did, so they are written and checked again.

    # --- the write guard's rules (336 manual §6.6, 372 manual §6.12) --------------------------
    def write_rules(self) -> list[Rule]:
        """Every setpoint inside the temperature window, every enabled ramp within the limit.

        Heat goes only through the output the role regulates with, in closed loop on the control
        input, at most at the heater range the station chose for regulating: any other output
        may only be switched off, and a mode whose heat no setpoint bounds (open loop, zone,
        warm-up, still, monitor) is refused, as are its levels (`STILL`, `ZONE`, and `MOUT` but
        0 %: in closed loop the manual output is added to the loop's). PID
        gains pass: in closed loop they shape the approach to a setpoint inside the window, and
        the range bounds the power any gain can ask for. Refused too is what changes a
        setpoint's meaning (input type, curve) or the heater's protection (its resistance and
        largest current, an input's temperature limit)."""
        def setpoint(admission: Admission) -> None:
            self.envelope.check_temperature_k(number(admission, 1, "setpoint", "K"))
            admission.state.pop(SETPOINT_K, None)     # known again once read back
            if admission.state.get(SETPOINT_UNITS) != KELVIN_UNITS:
                # SETP is read in the control input's preferred units, which a person at the
                # panel may have set to Celsius or sensor units (SETP 1,10 then regulates at 283 K).
                raise EnvelopeError("refused: a setpoint while the control input's units are not known to be kelvin "
                                    f"(read INTYPE? {self.role_control_input()} first, twice alike); nothing was "
                                    "written")

        def known_setpoint(admission: Admission, what: str) -> None:
            # The loop heats towards the setpoint the instrument holds, which a person at the panel
            # may have left anywhere (SETP 1,300 with the heater off heats nothing, until now).
            learned = admission.state.get(SETPOINT_K)
            if learned is None:
                raise EnvelopeError(f"refused: {what} would regulate towards a setpoint the check has not read "
                                    f"(read SETP? {self._regulating_output()} first, twice alike); nothing was "
                                    "written")
            setpoint_k, slack_k = learned
            # A setpoint written at the window's edge may read back a last digit beyond it.
            low, high = self.envelope.limit("temperature_min_k"), self.envelope.limit("temperature_max_k")
            if low is not None and low - slack_k <= setpoint_k < low:
                setpoint_k = low
            if high is not None and high < setpoint_k <= high + slack_k:
                setpoint_k = high
            self.envelope.check_temperature_k(setpoint_k)

        def ramp(admission: Admission) -> None:
            if number(admission, 1, "ramp enable", "") == 0:
                return
            rate_k_per_min = number(admission, 2, "setpoint ramp", "K/min")
            if rate_k_per_min <= 0:
                raise EnvelopeError(f"refused: setpoint ramp must be > 0 K/min, got {rate_k_per_min!r}; "
                                    "nothing was written")
            self.envelope.check_at_most("setpoint_ramp_max_k_per_min", rate_k_per_min, "setpoint ramp", "K/min")

        def heater_range(admission: Admission) -> None:
            output, range_index = whole_number(admission, 0, "output"), whole_number(admission, 1, "heater range")
            if range_index == 0:
                return                                          # off: always allowed
            known_setpoint(admission, "a heater range")
            if range_index < 0:
                raise EnvelopeError(f"refused: heater range {range_index} is not a range; nothing was written")
            largest = self.heater_ranges[self.station_heater_range]
            if output != self._regulating_output():
                raise EnvelopeError(f"refused: heater output {output} may only be switched off (range 0): the "
                                    f"station regulates with output {self._regulating_output()}; nothing was "
                                    "written")
            if range_index > largest:
                raise EnvelopeError(f"refused: heater range {range_index} is above the range the station chose "
                                    f"for regulating ({largest}, {self.station_heater_range!r}: option "
                                    f"heater_range, {self.envelope.where}); nothing was written")

        def output_mode(admission: Admission) -> None:
            output, mode = whole_number(admission, 0, "output"), whole_number(admission, 1, "output mode")
            modes = self.role_output().MODES
            if mode == modes["off"]:
                return
            if mode != modes["closed_loop"]:
                name = next((k for k, v in modes.items() if v == mode), str(mode))
                raise EnvelopeError(f"refused: output mode {mode} ({name}) heats the stage without a setpoint "
                                    "the temperature window bounds; only off and closed loop may be set; "
                                    "nothing was written")
            if output != self._regulating_output():
                raise EnvelopeError(f"refused: heater output {output} may only be off: the station regulates "
                                    f"with output {self._regulating_output()}; nothing was written")
            known_setpoint(admission, "closed loop")
            control = self._control_input_code()
            if whole_number(admission, 2, "control input") != control:
                raise EnvelopeError(f"refused: closed loop on input {admission.unit.arguments[2]!r} regulates "
                                    f"on a sensor other than the control input ({self.role_control_input()}, "
                                    f"code {control}), which the window is read on; nothing was written")

        def input_setup(admission: Admission) -> None:
            if admission.unit.arguments and self._is_control_input(admission.unit.arguments[0]):
                raise EnvelopeError(f"refused: the control input's setup ({admission.unit.header.lstrip(':')}: its "
                                    "enable and curve) sets what the window's kelvin are read from; set it at "
                                    "the instrument; nothing was written")

        open_loop = "a heater level no temperature window bounds"

        def manual_output(admission: Admission) -> None:
            whole_number(admission, 0, "output")
            if number(admission, 1, "manual output", "%") != 0:
                raise EnvelopeError(f"refused: a manual heater output is {open_loop} (in closed loop it is added "
                                    "to the loop's); only 0 % may be set; nothing was written")
        return [Rule("SETP", setpoint), Rule("RAMP", ramp), Rule("RANGE", heater_range),
                Rule("OUTMODE", output_mode),
                Rule("MOUT", manual_output),
                Rule("STILL", refuse(f"the still heater's output is {open_loop}")),
                Rule("ZONE", refuse("a zone table sets heater ranges and setpoints beside the guard")),
                Rule("INSET", input_setup),
                Rule("INTYPE", refuse("an input's type sets the units a setpoint is read in (the window is "
                                      "in kelvin)")),
                Rule("INCRV", refuse("an input's curve sets what a setpoint's kelvin mean")),
                Rule("CRVPT", refuse("a curve's points set what a setpoint's kelvin mean")),
                Rule("CRVHDR", refuse("a curve's header (its format, limit and coefficient) sets what a setpoint's "
                                      "kelvin mean")),
                Rule("CRVDEL", refuse("deleting a curve changes what a setpoint's kelvin mean on an input that "
                                      "reads it")),
                Rule("SCAL", refuse("a SoftCal curve sets what a setpoint's kelvin mean")),
                Rule("HTRSET", refuse("the heater's resistance and largest current set the power it may take, "
                                      "which no envelope field bounds; set them at the instrument")),
                Rule("TLIMIT", refuse("an input's temperature limit is the instrument's own protection; set it "
                                      "at the instrument"))]

    def reply_learners(self) -> list[Learner]:
        def units(state: dict, reply: str) -> None:
            try:
                state[SETPOINT_UNITS] = parse_preferred_units(reply)
            except ValueError:
                state.pop(SETPOINT_UNITS, None)

        def setpoint_k(state: dict, reply: str) -> None:
            try:
                value, resolution = float(reply), reply_resolution(reply)
            except ValueError:
                value, resolution = math.nan, math.nan
            if state.get(SETPOINT_UNITS) == KELVIN_UNITS and math.isfinite(value) and math.isfinite(resolution):
                state[SETPOINT_K] = (value, 0.5 * resolution)      # with half the reply's last digit
            else:
                state.pop(SETPOINT_K, None)

        return [Learner("INTYPE", units, asks=lambda arguments: len(arguments) == 1
                        and self._is_control_input(arguments[0])),
                Learner("SETP", setpoint_k, asks=lambda arguments: len(arguments) == 1
                        and arguments[0].strip() == str(self._regulating_output()))]

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """The station file's options for this driver, checked before any instrument is opened
        (lab.execution.station_checks: the dry run refuses them as the run would); ValueError
        naming the option."""
        if "heater_range" in options:
            cls.ranges_up_to(options["heater_range"])

    @classmethod
    def range_name(cls, heater_range: str) -> str:
        """The stock driver's name of a heater range however a station file spells it: any case,
        and for the 372's currents `u` or the micro sign (U+00B5) for the stock names' Greek mu
        (U+03BC), which look alike in a file; ValueError for a range the model does not have."""
        names = {name.casefold(): name for name, index in cls.heater_ranges.items() if index}
        key = heater_range.replace("\u00b5", "\u03bc").casefold() if isinstance(heater_range, str) else None
        if key is not None and key.endswith("ua"):
            key = key[:-2] + "\u03bca"
        if key not in names:
            raise ValueError(f"heater_range {heater_range!r} is not one of {list(names.values())}")
        return names[key]

    @classmethod
    def ranges_up_to(cls, heater_range: str) -> list[str]:
        """The regulating output's ranges from the lowest on up to `heater_range` (any spelling
        `range_name` takes); ValueError for a range the model does not have."""
        largest = cls.heater_ranges[cls.range_name(heater_range)]
        return [name for name, index in cls.heater_ranges.items() if 0 < index <= largest]

    def _regulating_output(self) -> int:
        """The output the role heats with, as the commands number it."""
        return int(self.role_output()._output_index)

    def _is_control_input(self, text: str) -> bool:
        """Whether an input argument names the control input, however its number is written
        (`6`, `06`, `+6`, `6.0`)."""
        control = str(self.role_control_input()).upper()
        try:
            return float(text) == float(control)
        except ValueError:
            return text.strip().upper() == control

    def _control_input_code(self) -> int:
        """The control input as `OUTMODE` spells it (the 336 numbers inputs A-D 1-4)."""
        mapping = self.role_output().input_channel.val_mapping
        control = self.role_control_input()
        return int(mapping[control]) if mapping else int(control)

    # --- helpers ----------------------------------------------------------------------------
    @staticmethod
    def exclude_stock_heater_setup(*outputs: Any) -> None:
        """Keep the stock HTRSET parameters of `outputs` out of snapshots.

        The stock group reads `HTRSET?` as the Model 335's five fields (output type first). The
        336 and 372 have no output-type field: their `HTRSET? <output>` answers four,
        <heater resistance>,<max current>,<max user current>,<current/power> (Model 336 manual
        §6.6 and Model 372 manual §6.12, HTRSET), so the five-way split fails on every read and
        each snapshot would log one failure per parameter. The values cannot be read through
        the stock parameters at all; the role verbs never use them.
        """
        for output in outputs:
            for name in STOCK_HTRSET_PARAMETERS:
                output.parameters[name].snapshot_exclude = True

    def _require_kelvin_setpoints(self) -> None:
        """Refuse, before anything is written, while the control input reads in units other
        than kelvin: `SETP` is taken in the input's preferred units, which a person at the panel
        may have changed (before the session or while the link was down), and `SETP 1,4.0` read
        in Celsius regulates at 277 K (a 4 ohm RuOx on a 372: above 1000 K). The guard refuses
        INTYPE from the driver; this reads what the instrument holds."""
        control = self.role_control_input()
        units = self.ask_agreed(f"INTYPE? {control}", parse_preferred_units)     # the guard learns them too
        if units != KELVIN_UNITS:
            raise EnvelopeError(f"refused: {self._who()}: the control input {control} reads in units {units} "
                                "(INTYPE's preferred units, set at the instrument), not kelvin, so a setpoint in "
                                "kelvin would regulate elsewhere; set the input to kelvin at the instrument; "
                                "nothing was written")

    def _write_setpoint(self, temperature_k: float, ramp_k_per_min: float | None) -> None:
        self._require_kelvin_setpoints()
        output = self.role_output()
        # The stock 0.5 s pause guards a read-back right after SETP; the verbs never read it
        # back, so the manual's 50 ms command spacing is enough.
        output.setpoint.post_delay = 0.05
        # Only the regulating output heats: another left heating at the front panel (an analog
        # output in warm-up mode) would heat on through the run, as safe state switches it off.
        for other in self.heater_outputs():
            if other is not output:
                other.output_range("off")
        # In closed loop the manual output is added to the PID's: one left at the front panel
        # would heat at that share of the range's power whatever the setpoint.
        self.write(f"MOUT {self._regulating_output()},0")
        # The loop is closed and given its range at a setpoint read back (the guard lets heat
        # through only towards a setpoint it has read, twice alike), with the ramp off: the
        # target, or for a ramp the stage temperature clamped to the window, since a ramp starts
        # from the present setpoint, which may lie anywhere (0 K after a reset, outside the window
        # if set at the front panel). A ramp then runs from there to the target.
        output.setpoint_ramp_group.set_parameters({"setpoint_ramp_enabled": False})
        if ramp_k_per_min is None:
            output.setpoint(temperature_k)
        else:
            output.setpoint(self._inside_window_k(round(self.read_temperature_k(), 4)))
        self.ask_agreed(f"SETP? {self._regulating_output()}", float, for_the_guard=True)   # the guard learns it
        output.output_group.set_parameters({"mode": "closed_loop", "input_channel": self.role_control_input()})
        output.output_range(self.heater_range_on)
        if ramp_k_per_min is not None:
            output.setpoint_ramp_group.set_parameters({"setpoint_ramp_enabled": True,
                                                       "setpoint_ramp_rate": ramp_k_per_min})
            output.setpoint(temperature_k)

    def _inside_window_k(self, temperature_k: float) -> float:
        low, high = self.envelope.limit("temperature_min_k"), self.envelope.limit("temperature_max_k")
        return min(max(temperature_k, low if low is not None else temperature_k),
                   high if high is not None else temperature_k)

    def reapply_role_settings(self) -> None:
        if self._last_setpoint is not None:
            self._write_setpoint(*self._last_setpoint)

    def raise_on_status_errors(self, after: str) -> None:
        status = self.ask_parsed("*ESR?", int, repeatable=False)
        flagged = [text for bit, text in _ESR_ERROR_BITS.items() if status & bit]
        if flagged:
            raise InstrumentError(f"{self._who()}: after {after} the instrument flagged {', '.join(flagged)} "
                                  f"(*ESR? = {status})")
