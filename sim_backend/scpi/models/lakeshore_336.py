"""Lake Shore Model 336 temperature controller: inputs A-D, outputs 1-4, on a 4 K stage.

Commands follow the Model 336 manual's command reference (chapter 6). Output 1 heats the
modelled stage; outputs 2-4 keep their settings but heat nothing the bench models (output 2
would be a second 50 W loop, 3-4 are 10 V analog outputs), so their loops stay at 0 %.

PID units (manual §2.9 / PID command): P is a gain (0.1-1000), I is "repeats per 1000 s"
(0.1-1000, integral time 1000/I s), D is % of a quarter of the integral time (0-200 %), so
D in seconds = D/100 · 1000/(4·I). The panel's D is in seconds, hence the conversion here.

Heater ranges of outputs 1-2: Low, Medium, High = 1 %, 10 %, 100 % of full power, which is
I_max² · R from HTRSET (output 1: 2 A into 25 Ω = 100 W). HTR? answers % of full-scale
current or of power, as HTRSET's display field says.

HTRSET? answers the Model 336's four fields, ``<htr resistance>,<max current>,<max user
current>,<current/power>`` (format ``n,n,+n.nnn,n``); the Model 335 puts an output type before
them, which is the form QCoDeS' LakeshoreModel336 parses (docs/conformance.md). Output 2 is
refused 2 A (max current 4, output 1 into 25 Ω only), so it powers up at 1 A: what HTRSET? 2
answers can be sent back.

Power-up state (*RST): every output's mode is Off (``OUTMODE? 1`` answers ``0,1,0``) with
heater range Off, so a client that sets only a setpoint and a range gets no heat until it
sends ``OUTMODE <n>,1,<input>,<powerup>`` (closed-loop PID) — nwlab's driver does; PyMeasure's
LakeShore3xx flow does not (tests/personalities/test_lakeshore_stock_clients.py).

RDGST? answers the bit weighting as ``nnn``: 1 invalid reading (input disabled), 16 temperature
underrange and 32 overrange (outside the input curve's temperature span).

Min/max capture (manual chapter 6, as in the Model 350's command set: ``MNMXRST`` "resets the
minimum and maximum data for all inputs"; ``MDAT? <input>``, input A-D, returns ``<min
value>,<max value>``, each here in KRDG?'s fixed form). No command configures the capture (the
340's and 331's ``MNMX`` is not in the 336/350 command list): every input's capture runs from
power-up, or from the last ``MNMXRST`` (not *RST), over the stage as the thermal model
integrates it, step by step between commands (`TemperatureControllerPanel`), so an excursion that
begins and ends between two queries is in it. The entry does not say in which units the data
come; here they are the input's preferred units (INTYPE's last field: kelvin, Celsius or sensor
units), as for SETP; a disabled input answers ``+0.0000,+0.0000`` as KRDG? answers 0. ``MDAT?``
without an input, with input 0 or E, ``MNMXRST`` with a parameter or as a query set *ESR's bits
as any other malformed command.

The stage starts at `initial_temperature_k` (station file): by default ``base``, its no-load
equilibrium (~3.17 K for the 4 K probe station), where it stays until heated.
"""

from __future__ import annotations

from sim_backend.bench.temperature_controller import (HeaterOutput, SensorInput, TemperatureControllerPanel,
                                                      initial_temperature_k)
from sim_backend.physics import thermal
from sim_backend.scpi.commands import command, query, setting
from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.ieee488 import Identity
from sim_backend.scpi.models import _lakeshore_common as common
from sim_backend.scpi.models._lakeshore_common import Channel, OutputSettings, bit_weighting, fixed
from sim_backend.scpi.params import Integer, Real

INPUTS = ("A", "B", "C", "D")
_INPUT = Channel(names=INPUTS)
_INPUT_OR_ALL = Channel(names=("0",) + INPUTS)  # KRDG? 0 reads every input
_OUTPUT = Integer(1, 4)
_HEATER = Integer(1, 2)
_MODES = {0: common.OFF, 1: common.CLOSED, 2: common.ZONE, 3: common.OPEN}  # 4, 5: analog only
_MAX_CURRENT_A = {1: 0.707, 2: 1.0, 3: 1.141, 4: 2.0}
_RESISTANCE_OHM = {1: 25.0, 2: 50.0}
#: Standard curves in the 336's memory: number -> (name, serial, format, limit K, coefficient).
_CURVES = {1: ("DT-470", "Standard", 2, 475.0, 1), 2: ("DT-670", "Standard", 2, 500.0, 1),
           3: ("DT-500-D", "Standard", 2, 365.0, 1), 6: ("PT-100", "Standard", 3, 800.0, 2),
           7: ("PT-1000", "Standard", 3, 800.0, 2), 8: ("RX-102A-AA", "Standard", 4, 40.0, 1)}
#: Lowest temperature, K, of each standard curve above (below it a reading is underrange).
_CURVE_LOWEST_K = {1: 1.4, 2: 1.4, 3: 1.4, 6: 30.0, 7: 30.0, 8: 0.05}
#: Approximate DT-670 diode voltage, V, against temperature, K (coarse points of curve 11).
_DIODE_V = ((1.4, 1.644), (4.2, 1.578), (10.0, 1.384), (20.0, 1.198), (30.0, 1.106),
            (50.0, 1.072), (77.35, 1.027), (100.0, 0.976), (200.0, 0.754), (300.0, 0.559),
            (500.0, 0.090))


class _Input:
    def __init__(self, letter: str) -> None:
        self.intype = [1, 0, 0, 0, 1]   # diode, autorange off, range 0, no compensation, kelvin
        self.curve = 2
        self.name = f"Input {letter}"
        self.limit_k = 0.0


class Lakeshore336(common.LakeshorePersonality, common.shared_commands(_INPUT, _OUTPUT, 1, 2)):
    """LSCI,MODEL336: the 4 K stage's controller (see the module docstring)."""

    models = ("lakeshore_336",)
    role = "temperature_controller"
    identity = Identity("LSCI", "MODEL336", "LSA1A2B/#######", "2.9")

    @classmethod
    def create_panel(cls, model: str, settings: dict) -> TemperatureControllerPanel:
        stage = common.stage_for(settings, "4k_probe_station")
        full_w = _full_power_w(1, 4)
        return TemperatureControllerPanel(
            stage=stage,
            state=thermal.ThermalState(temperature_k=initial_temperature_k(settings, stage)),
            range_powers_w=(0.0, full_w / 100, full_w / 10, full_w),
            inputs={letter: SensorInput() for letter in INPUTS},
            outputs={1: HeaterOutput()},
        )

    def reset(self) -> None:
        """*RST: every output Off (mode and range), inputs A-D controlling outputs 1-4."""
        self.inputs = {letter: _Input(letter) for letter in INPUTS}
        self.outputs = {n: OutputSettings(control_input=INPUTS[(n - 1) % 4]) for n in range(1, 5)}
        # 25 Ω, show current; output 1 at 2 A (100 W), output 2 at 1 A (its setter refuses 2 A)
        self.htrset = {1: [1, 4, 0.0, 1], 2: [1, 2, 0.0, 1]}
        for n in self.outputs:
            self._push(n)

    # -- inputs -------------------------------------------------------------------------------

    def _kelvin(self, letter: str) -> float:
        return self.temperature_k() if self.inputs[letter].intype[0] else 0.0

    @query("KRDG", _INPUT_OR_ALL)
    def kelvin_reading(self, letter: str) -> str:
        """Temperature reading, K (0: all four inputs)."""
        letters = INPUTS if letter == "0" else (letter,)
        return ",".join(fixed(self._kelvin(name)) for name in letters)

    @query("CRDG", _INPUT_OR_ALL)
    def celsius_reading(self, letter: str) -> str:
        """Temperature reading, °C (0: all four inputs)."""
        letters = INPUTS if letter == "0" else (letter,)
        return ",".join(fixed(self._kelvin(name) - 273.15) for name in letters)

    @query("SRDG", _INPUT_OR_ALL)
    def sensor_reading(self, letter: str) -> str:
        """Sensor units reading: V for a diode, Ω for an RTD (0: all four inputs)."""
        letters = INPUTS if letter == "0" else (letter,)
        return ",".join(fixed(self._sensor_units(name)) for name in letters)

    def _sensor_units(self, letter: str, temperature_k: float | None = None) -> float:
        kind = self.inputs[letter].intype[0]
        temperature_k = self.temperature_k() if temperature_k is None else temperature_k
        if kind == 1:
            return common.interpolate(_DIODE_V, temperature_k)
        if kind == 2:  # platinum: ~0.385 %/K near room temperature, a residual below 30 K
            return 100.0 * max(1.0 + 0.00385 * (temperature_k - 273.15), 0.02)
        if kind == 3:  # NTC (Cernox-like): resistance rises as temperature falls
            return 50.0 * (300.0 / max(temperature_k, 0.3)) ** 1.2
        return 0.0

    @query("RDGST", _INPUT)
    def reading_status(self, letter: str) -> str:
        """Status bit weighting, ``nnn``: 1 invalid, 16 temp underrange, 32 temp overrange (000: OK)."""
        found = self.inputs[letter]
        if not found.intype[0]:
            return bit_weighting(1)
        temperature_k = self.temperature_k()
        highest_k = _CURVES[found.curve][3] if found.curve in _CURVES else float("inf")
        lowest_k = _CURVE_LOWEST_K.get(found.curve, 0.0)
        return bit_weighting(32 if temperature_k > highest_k else 16 if temperature_k < lowest_k else 0)

    @command("MNMXRST")
    def min_max_reset(self) -> None:
        """Reset the minimum and maximum data of all inputs (they start again from the present reading)."""
        self.panel.reset_extremes()

    @query("MDAT", _INPUT)
    def min_max_data(self, letter: str) -> str:
        """Minimum and maximum input data since power-up or MNMXRST, ``<min>,<max>`` in the input's preferred units."""
        found = self.inputs[letter]
        if not found.intype[0]:
            return f"{fixed(0.0)},{fixed(0.0)}"
        low_k, high_k = self.panel.extremes_k(letter)
        units = found.intype[4]
        if units == 2:
            low, high = low_k - 273.15, high_k - 273.15
        elif units == 3:   # a diode's or an NTC's sensor units fall as the temperature rises
            low, high = sorted((self._sensor_units(letter, low_k), self._sensor_units(letter, high_k)))
        else:
            low, high = low_k, high_k
        return f"{fixed(low)},{fixed(high)}"

    @setting("INTYPE", _INPUT, Integer(0, 4), Integer(0, 1), Integer(0, 8), Integer(0, 1), Integer(1, 3),
             query_params=(_INPUT,))
    def input_type(self, letter: str) -> str:
        """Sensor type (0 off, 1 diode, 2 PTC RTD, 3 NTC RTD), autorange, range, compensation, units."""
        return ",".join(str(v) for v in self.inputs[letter].intype)

    @input_type.setter
    def input_type(self, letter: str, kind: int, autorange: int, rng: int, compensation: int, units: int) -> None:
        if rng > {0: 8, 1: 1, 2: 6, 3: 8, 4: 0}[kind]:
            raise ScpiError(-222)
        self.inputs[letter].intype = [kind, autorange, rng, compensation if kind != 1 else 0, units]

    @setting("INCRV", _INPUT, Integer(0, 59), query_params=(_INPUT,))
    def input_curve(self, letter: str) -> str:
        """Curve number used by an input (0: none)."""
        return f"{self.inputs[letter].curve:02d}"

    @input_curve.setter
    def input_curve(self, letter: str, curve: int) -> None:
        self.inputs[letter].curve = curve

    @query("CRVHDR", Integer(1, 59))
    def curve_header(self, curve: int) -> str:
        """Curve header: name, serial number, format (2 V/K, 3 Ω/K, 4 log Ω/K), limit K, coefficient."""
        name, serial, fmt, limit_k, coefficient = _CURVES.get(curve, ("User Curve", "", 3, 375.0, 1))
        return f"{name:<15},{serial:<10},{fmt},{limit_k:+.3f},{coefficient}"

    # -- outputs ------------------------------------------------------------------------------

    def _push(self, n: int) -> None:
        """Mirror output n's settings onto the panel heater (output 1 only heats the stage)."""
        out = self.outputs[n]
        mode = _MODES.get(out.mode, common.OFF) if out.control_input != "0" else common.OFF
        i = out.i
        d_s = out.d / 100.0 * 1000.0 / (4.0 * i) if i > 0 else 0.0
        self.apply(n, mode, (out.p, i, d_s))

    def _setpoint_k(self, n: int) -> float:
        out = self.outputs[n]
        units = self.inputs[out.control_input].intype[4] if out.control_input in self.inputs else 1
        return out.setpoint + 273.15 if units == 2 else out.setpoint

    @setting("SETP", _OUTPUT, Real(None, -273.15, 2000.0), query_params=(_OUTPUT,))
    def setpoint(self, n: int) -> str:
        """Control setpoint in the control input's preferred units (K or °C)."""
        return fixed(self.outputs[n].setpoint)

    @setpoint.setter
    def setpoint(self, n: int, value: float) -> None:
        self.outputs[n].setpoint = value
        self.set_setpoint_k(n, self._setpoint_k(n))

    @setting("RANGE", _OUTPUT, Integer(0, 3), query_params=(_OUTPUT,))
    def heater_range(self, n: int) -> int:
        """Heater range: outputs 1-2 0 off, 1 low, 2 medium, 3 high; outputs 3-4 0 off, 1 on."""
        return self.outputs[n].range_index

    @heater_range.setter
    def heater_range(self, n: int, index: int) -> None:
        if n > 2 and index > 1:
            raise ScpiError(-222)
        self.outputs[n].range_index = index
        self._push(n)

    @setting("OUTMODE", _OUTPUT, Integer(0, 5), Integer(0, 4), Integer(0, 1), query_params=(_OUTPUT,))
    def output_mode(self, n: int) -> str:
        """Mode (0 off, 1 closed loop, 2 zone, 3 open loop, 4 monitor out, 5 warm up), input (0 none, 1-4 A-D), power-up enable."""
        out = self.outputs[n]
        return f"{out.mode},{'0ABCD'.index(out.control_input)},{out.powerup}"

    @output_mode.setter
    def output_mode(self, n: int, mode: int, source: int, powerup: int) -> None:
        if n <= 2 and mode > 3:
            raise ScpiError(-222)  # monitor out and warm up exist on the analog outputs only
        out = self.outputs[n]
        out.mode, out.control_input, out.powerup = mode, "0ABCD"[source], powerup
        self._push(n)

    @setting("PID", _OUTPUT, Real(None, 0.1, 1000.0), Real(None, 0.1, 1000.0), Real(None, 0.0, 200.0),
             query_params=(_OUTPUT,))
    def pid(self, n: int) -> str:
        """Gains: P (0.1-1000), I in repeats per 1000 s (0.1-1000), D in % of I time / 4 (0-200)."""
        out = self.outputs[n]
        return f"{out.p:+07.1f},{out.i:+07.1f},{out.d:+06.1f}"

    @pid.setter
    def pid(self, n: int, p: float, i: float, d: float) -> None:
        out = self.outputs[n]
        out.p, out.i, out.d = p, i, d
        self._push(n)

    def _output_pct(self, n: int) -> float:
        """Output now, % of range power (panel heater), or the open-loop value elsewhere."""
        heater = self.heater(n)
        if heater is not None:
            return heater.output_pct
        out = self.outputs[n]
        return out.manual_pct if out.mode == 3 and out.range_index else 0.0

    @query("HTR", _OUTPUT)
    def heater_output(self, n: int) -> str:
        """Heater output, % of full-scale current or power of the range (HTRSET display).

        The manual lists outputs 1-2 (AOUT? reads 3-4); 3-4 are answered like AOUT? so a
        driver polling every output gets a reply instead of a timeout.
        """
        power_pct = self._output_pct(n)
        shown = common.current_fraction_pct(power_pct) if self.shows_current(n) else power_pct
        return f"{shown:+06.2f}"

    @query("AOUT", Integer(3, 4))
    def analog_output(self, n: int) -> str:
        """Analog output 3 or 4, % of full scale."""
        return f"{self._output_pct(n):+06.2f}"

    @setting("HTRSET", _HEATER, Integer(1, 2), Integer(0, 4), Real(None, 0.0, 2.0), Integer(1, 2),
             query_params=(_OUTPUT,))
    def heater_setup(self, n: int) -> str:
        """Heater resistance (1 25 Ω, 2 50 Ω), max current (0 user, 1 0.707 A, 2 1 A, 3 1.141 A, 4 2 A), user max A, display (1 current, 2 power).

        Set for outputs 1-2 only. The analog outputs 3-4 have no heater setup; their query
        answers zeros rather than leaving a polling driver to time out.
        """
        resistance, max_current, user_a, display = self.htrset.get(n, (0, 0, 0.0, 0))
        return f"{resistance},{max_current},{user_a:+.3f},{display}"

    @heater_setup.setter
    def heater_setup(self, n: int, resistance: int, max_current: int, user_a: float, display: int) -> None:
        if (max_current == 4 and (n != 1 or resistance != 1)) or (max_current == 0 and user_a <= 0):
            raise ScpiError(-221)  # 2 A is output 1 into 25 Ω only (voltage compliance)
        self.htrset[n] = [resistance, max_current, user_a, display]
        if n == 1:
            full_w = _full_power_w(resistance, max_current, user_a)
            self.panel.range_powers_w = (0.0, full_w / 100, full_w / 10, full_w)
        self._push(n)

    @query("HTRST", _HEATER)
    def heater_status(self, n: int) -> int:
        """Heater error: 0 none, 1 open load, 2 short."""
        return 0



def _full_power_w(resistance: int, max_current: int, user_a: float = 0.0) -> float:
    """Full-scale heater power, W: I_max² · R."""
    current_a = user_a if max_current == 0 else _MAX_CURRENT_A[max_current]
    return current_a**2 * _RESISTANCE_OHM[resistance]


PERSONALITIES = (Lakeshore336,)
