"""Lake Shore Model 372 AC resistance bridge and temperature controller on a mixing chamber.

Commands follow the Model 372 manual's command reference (chapter 6). Channels 1-16 (the
scanner) and the control input A all read the one thermal node the bench models, the
mixing-chamber plate, through a ruthenium-oxide-like sensor. Output 0 (sample heater) heats
that plate; outputs 1 (warm-up) and 2 (analog/still) keep their settings but heat nothing
modelled.

PID units (manual §2.11 / PID command): P is a gain (0-1000), I is an integral time in
seconds (0-10000; a smaller I integrates faster), D a derivative time in seconds (0-2500).
The panel's I is in repeats per 1000 s, so I_panel = 1000 / I_s.

Sample heater ranges 1-8 are currents 31.6 µA ... 100 mA in half decades; power is
I² · R with R the heater resistance from HTRSET (default 100 Ω: 100 mA gives 1 W).
"""

from __future__ import annotations

import math
from dataclasses import replace

from sim_backend.bench.temperature_controller import (HeaterOutput, SensorInput, TemperatureControllerPanel,
                                                      initial_temperature_k)
from sim_backend.physics import thermal
from sim_backend.scpi.commands import query, setting
from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.ieee488 import Identity
from sim_backend.scpi.models import _lakeshore_common as common
from sim_backend.scpi.models._lakeshore_common import Channel, OutputSettings, bit_weighting, fixed
from sim_backend.scpi.params import Integer, Real

CHANNELS = ("A",) + tuple(str(n) for n in range(1, 17))
_INPUT = Channel(names=CHANNELS)
_SCANNED = Channel(names=CHANNELS[1:])
_OUTPUT = Integer(0, 2)
_RANGE_CURRENTS_A = tuple(10 ** (-4.5 + k / 2) for k in range(8))  # 31.6 µA ... 100 mA
_MODES = {0: common.OFF, 2: common.OPEN, 3: common.ZONE, 5: common.CLOSED}
_SENSOR_NOISE_K = 20e-6
#: Ruthenium-oxide-like sensor R(T) = R0 · exp(sqrt(T0 / T)): ~1 kΩ warm, ~9 kΩ at 10 mK.
_R0_OHM, _T0_K = 1000.0, 0.05


def ruox_ohm(temperature_k: float) -> float:
    """Sensor resistance, Ω, at a temperature (representative, not a calibration)."""
    return _R0_OHM * math.exp(math.sqrt(_T0_K / max(temperature_k, 1e-4)))


def ruox_kelvin(resistance_ohm: float) -> float:
    """Inverse of `ruox_ohm` (a setpoint given in ohms)."""
    if resistance_ohm <= _R0_OHM:
        return 1e3
    return _T0_K / math.log(resistance_ohm / _R0_OHM) ** 2


class _Input:
    def __init__(self, name: str) -> None:
        self.inset = [1, 10, 3, 0, 1]            # enabled, dwell s, pause s, curve, tempco
        self.intype = [0, 2, 1, 15, 0, 1]        # voltage, 6.32 µV, autorange, 20 kΩ, no shunt, K
        self.name = "Control Input" if name == "A" else f"Channel {int(name):02d}"
        self.limit_k = 0.0


class Lakeshore372(common.LakeshorePersonality, common.shared_commands(_INPUT, _OUTPUT, 3, 3)):
    """LSCI,MODEL372: the dilution fridge's mixing-chamber controller (module docstring)."""

    models = ("lakeshore_372",)
    role = "temperature_controller"
    identity = Identity("LSCI", "MODEL372", "LSA2B3C", "1.4")

    @classmethod
    def create_panel(cls, model: str, settings: dict) -> TemperatureControllerPanel:
        stage = common.stage_for(settings, "dilution_mxc")
        return TemperatureControllerPanel(
            stage=stage,
            state=thermal.ThermalState(temperature_k=initial_temperature_k(settings, stage)),
            range_powers_w=_range_powers_w(100.0),
            inputs={name: SensorInput(noise_k_rms=_SENSOR_NOISE_K) for name in CHANNELS},
            outputs={0: HeaterOutput()},
        )

    def reset(self) -> None:
        """*RST: defaults; every output off, scanner on channel 1."""
        self.inputs = {name: _Input(name) for name in CHANNELS}
        self.outputs = {n: OutputSettings(control_input="1", p=10.0, i=20.0, extra=(0, 0, 10)) for n in range(3)}
        self.htrset = {0: [100.0, 0, 0.0, 1], 1: [1, 2, 0.0, 1]}
        self.scan = ["1", 0]
        self.still_pct = 0.0
        self.panel.range_powers_w = _range_powers_w(100.0)
        for n in self.outputs:
            self._push(n)

    # -- inputs -------------------------------------------------------------------------------

    def _kelvin(self, name: str) -> float:
        return self.temperature_k() if self.inputs[name].inset[0] else 0.0

    @query("RDGK", _INPUT)
    def kelvin_reading(self, name: str) -> str:
        """Temperature reading, K."""
        return fixed(self._kelvin(name), 6)

    kelvin_reading_alias = replace(kelvin_reading, pattern="KRDG", doc="Temperature reading, K (as RDGK?).")

    @query("RDGR", _INPUT)
    def resistance_reading(self, name: str) -> str:
        """Resistance reading, Ω."""
        return fixed(ruox_ohm(self.temperature_k()) if self.inputs[name].inset[0] else 0.0, 3)

    sensor_reading = replace(resistance_reading, pattern="SRDG", doc="Sensor units reading, Ω (as RDGR?).")

    @query("RDGST", _INPUT)
    def reading_status(self, name: str) -> str:
        """Status bit weighting, ``nnn``: 1 CS OVL, 2 VCM OVL, 4 VMIX OVL, 8 VDIF OVL, 16 R OVER,
        32 R UNDER, 64 T OVER, 128 T UNDER (000: none)."""
        return bit_weighting(0)

    @setting("INSET", _INPUT, Integer(0, 1), Integer(1, 200), Integer(3, 200), Integer(0, 59), Integer(1, 2),
             query_params=(_INPUT,))
    def input_setup(self, name: str) -> str:
        """Enabled, dwell s, pause s, curve number, temperature coefficient (1 negative, 2 positive)."""
        return ",".join(str(v) for v in self.inputs[name].inset)

    @input_setup.setter
    def input_setup(self, name: str, enabled: int, dwell_s: int, pause_s: int, curve: int, tempco: int) -> None:
        self.inputs[name].inset = [enabled, dwell_s, pause_s, curve, tempco]

    @setting("INTYPE", _INPUT, Integer(0, 1), Integer(1, 22), Integer(0, 2), Integer(1, 22), Integer(0, 1),
             Integer(1, 2), query_params=(_INPUT,))
    def input_type(self, name: str) -> str:
        """Excitation mode (0 V, 1 I), excitation range, autorange, resistance range, shunt, units (1 K, 2 Ω)."""
        return ",".join(str(v) for v in self.inputs[name].intype)

    @input_type.setter
    def input_type(self, name: str, mode: int, excitation: int, autorange: int, rng: int, shunt: int,
                   units: int) -> None:
        if mode == 0 and excitation > 12:
            raise ScpiError(-222)  # voltage excitation has ranges 1-12 only
        self.inputs[name].intype = [mode, excitation, autorange, rng, shunt, units]

    @setting("SCAN", _SCANNED, Integer(0, 1), query_params=())
    def scanner(self) -> str:
        """Scanner channel (1-16) and autoscan (0 off, 1 on)."""
        return f"{int(self.scan[0]):02d},{self.scan[1]}"

    @scanner.setter
    def scanner(self, name: str, autoscan: int) -> None:
        self.scan = [name, autoscan]

    # -- outputs ------------------------------------------------------------------------------

    def _push(self, n: int) -> None:
        out = self.outputs[n]
        mode = _MODES.get(out.mode, common.OFF)
        i_panel = 1000.0 / out.i if out.i > 0 else 0.0
        self.apply(n, mode, (out.p, i_panel, out.d))

    def _setpoint_k(self, n: int) -> float:
        out = self.outputs[n]
        units = self.inputs[out.control_input].intype[5] if out.control_input in self.inputs else 1
        return ruox_kelvin(out.setpoint) if units == 2 else out.setpoint

    @setting("OUTMODE", _OUTPUT, Integer(0, 6), _INPUT, Integer(0, 1), Integer(0, 1), Integer(0, 1),
             Integer(1, 255), query_params=(_OUTPUT,))
    def output_mode(self, n: int) -> str:
        """Mode (0 off, 1 monitor out, 2 open loop, 3 zone, 4 still, 5 closed loop, 6 warm up), input, power-up enable, polarity, filter, delay s."""
        out = self.outputs[n]
        polarity, filtered, delay_s = out.extra
        return f"{out.mode},{out.control_input},{out.powerup},{polarity},{filtered},{delay_s}"

    @output_mode.setter
    def output_mode(self, n: int, mode: int, source: str, powerup: int, polarity: int, filtered: int,
                    delay_s: int) -> None:
        allowed = {0: (0, 2, 3, 5), 1: (0, 1, 2, 3, 5, 6), 2: (0, 1, 2, 3, 4, 5)}[n]
        if mode not in allowed:
            raise ScpiError(-222)
        out = self.outputs[n]
        out.mode, out.control_input, out.powerup, out.extra = mode, source, powerup, (polarity, filtered, delay_s)
        self._push(n)

    @setting("SETP", _OUTPUT, Real(None, 0.0, 1e6), query_params=(_OUTPUT,))
    def setpoint(self, n: int) -> str:
        """Setpoint in the control input's units (K, or Ω when the input reads in ohms)."""
        return fixed(self.outputs[n].setpoint, 6)

    @setpoint.setter
    def setpoint(self, n: int, value: float) -> None:
        self.outputs[n].setpoint = value
        self.set_setpoint_k(n, self._setpoint_k(n))

    @setting("RANGE", _OUTPUT, Integer(0, 8), query_params=(_OUTPUT,))
    def heater_range(self, n: int) -> int:
        """Range: sample heater 0 off, 1-8 = 31.6 µA ... 100 mA; outputs 1-2 0 off, 1 on."""
        return self.outputs[n].range_index

    @heater_range.setter
    def heater_range(self, n: int, index: int) -> None:
        if n > 0 and index > 1:
            raise ScpiError(-222)
        self.outputs[n].range_index = index
        self._push(n)

    @setting("PID", _OUTPUT, Real(None, 0.0, 1000.0), Real(None, 0.0, 10000.0), Real(None, 0.0, 2500.0),
             query_params=(_OUTPUT,))
    def pid(self, n: int) -> str:
        """Gain P (0-1000), integral time I, s (0-10000), derivative time D, s (0-2500)."""
        out = self.outputs[n]
        return f"{out.p:+.3f},{out.i:+.3f},{out.d:+.3f}"

    @pid.setter
    def pid(self, n: int, p: float, i: float, d: float) -> None:
        out = self.outputs[n]
        out.p, out.i, out.d = p, i, d
        self._push(n)

    def _output_pct(self, n: int) -> float:
        heater = self.heater(n)
        if heater is not None:
            return heater.output_pct
        out = self.outputs[n]
        return (self.still_pct if out.mode == 4 else out.manual_pct) if out.mode in (2, 4) and out.range_index else 0.0

    @query("HTR", Integer(0, 2, optional=True))
    def heater_output(self, n: int | None) -> str:
        """Sample heater output: % of range current, or W when HTRSET shows power.

        The manual's form has no argument (AOUT? reads outputs 1-2); an output number is
        accepted and 1-2 answer like AOUT?, so drivers that poll every output get replies.
        """
        n = n or 0
        if n:
            return self.analog_output.query_handler(self, n)  # type: ignore[attr-defined]
        power_pct = self._output_pct(0)
        if self.shows_current(0):
            return f"{common.current_fraction_pct(power_pct):+.3f}"
        return f"{power_pct / 100 * self.panel.range_powers_w[self.outputs[0].range_index]:+.3e}"

    @query("AOUT", Integer(1, 2))
    def analog_output(self, n: int) -> str:
        """Warm-up heater or analog/still output, % of full scale."""
        return f"{self._output_pct(n):+.3f}"

    @setting("STILL", Real(None, 0.0, 100.0))
    def still(self) -> str:
        """Still heater output (analog output 2 in still mode), %."""
        return f"{self.still_pct:+.3f}"

    @still.setter
    def still(self, percent: float) -> None:
        self.still_pct = percent

    @setting("HTRSET", Integer(0, 1), Real(None, 1.0, 2000.0), Integer(0, 2), Real(None, 0.0, 0.63), Integer(1, 2),
             query_params=(_OUTPUT,))
    def heater_setup(self, n: int) -> str:
        """Sample: resistance Ω (1-2000), 0, 0, display; warm-up: 1 25 Ω | 2 50 Ω, max current (0 user, 1 0.45 A, 2 0.63 A), user A, display (1 current, 2 power).

        Output 2 has no heater setup; its query answers zeros instead of timing out.
        """
        resistance, max_current, user_a, display = self.htrset.get(n, (0, 0, 0.0, 0))
        first = f"{resistance:+.3f}" if n == 0 else str(int(resistance))
        return f"{first},{max_current},{user_a:+.3f},{display}"

    @heater_setup.setter
    def heater_setup(self, n: int, resistance: float, max_current: int, user_a: float, display: int) -> None:
        if n == 1 and resistance not in (1.0, 2.0):
            raise ScpiError(-222)
        self.htrset[n] = [resistance, max_current, user_a, display]
        if n == 0:
            self.panel.range_powers_w = _range_powers_w(resistance)
        self._push(n)

    @query("HTRST", Integer(0, 1))
    def heater_status(self, n: int) -> int:
        """Heater error: 0 none, 1 open, 2 short."""
        return 0


def _range_powers_w(resistance_ohm: float) -> tuple[float, ...]:
    """Off, then I² · R for the eight sample-heater current ranges."""
    return (0.0,) + tuple(current**2 * resistance_ohm for current in _RANGE_CURRENTS_A)


PERSONALITIES = (Lakeshore372,)
