"""Lake Shore 372 as the temperature controller (dilution fridge, mK): the stock QCoDeS driver
plus the role verbs, regulating with the sample heater (output 0).

Options (station file): `sensor_input` (1-16, the scanner channel read and regulated on),
`heater_range` (the stock driver's sample heater range name used while regulating, e.g. "316μA").
Commands: Model 372 manual §6.12 (`KRDG? <ch>`, `SETP 0,<K>`, `RAMP 0,<on>,<K/min>`,
`OUTMODE 0,<mode>,<input>,...`, `RANGE 0,<range>`, `HTR?`).

No min/max capture: the role's `reset_temperature_extremes` and `temperature_extremes_k` raise
NoExtremesCapture (NO_CAPTURE says why) and send nothing, so the run's temperature guard reads
the stage before and after each measurement only, and says so in the run's record. The 372
manual (§5.8.1) lists the Model 370's min/max command, MNMX, among those the 372 no longer
supports; neither the stock QCoDeS driver nor the emulated 372 has a min/max query.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qcodes import validators as vals
from qcodes.instrument_drivers.Lakeshore import LakeshoreModel372
from qcodes.instrument_drivers.Lakeshore.Lakeshore_model_372 import LakeshoreModel372Output

from drivers._lakeshore import LakeshoreTemperatureRole
from drivers._write_guard import Admission, Rule, number
from contracts.envelope import Envelope, EnvelopeError
from contracts.roles import NoExtremesCapture

#: Why the 372 role has no min/max capture (the run's record quotes it).
NO_CAPTURE = ("the Lake Shore 372 driver has no min/max capture to use (the 372 manual lists the 370's MNMX "
              "among the commands it no longer supports)")


class Lakeshore372(LakeshoreTemperatureRole, LakeshoreModel372):
    """TemperatureController role on a Lake Shore 372."""

    heater_ranges = LakeshoreModel372Output.RANGES            # the sample heater's

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        super().check_options(options)
        channel = options.get("sensor_input", 1)
        if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= 16:
            raise ValueError(f"sensor_input {channel!r} is not a scanner channel 1-16")

    def __init__(self, name: str, address: str, *, envelope: Envelope | None = None, sensor_input: int = 1,
                 heater_range: str = "316μA", **kwargs: Any) -> None:
        self.check_options(dict(sensor_input=sensor_input, heater_range=heater_range))
        self.envelope = envelope or Envelope("temperature_controller")
        heater_range = self.range_name(heater_range)       # the stock spelling
        self.station_heater_range = heater_range
        super().__init__(name, address, **kwargs)
        self.remember_address(address, kwargs.get("visalib"))
        self.control_sensor = self.add_parameter(
            "control_sensor", initial_value=sensor_input, vals=vals.Enum(sensor_input), unit="",
            get_cmd=None, set_cmd=None, docstring="Scanner channel the role verbs read and regulate on (the "
            "station's: the write guard holds closed loop to it, so it cannot be changed at run time).")
        self.regulating_range = self.add_parameter(
            "regulating_range", initial_value=heater_range, vals=vals.Enum(*self.ranges_up_to(heater_range)),
            unit="", get_cmd=None, set_cmd=None,
            docstring="Sample heater range switched on by set_setpoint_k, at most the station's heater_range.")
        # Model 372 manual §6.12, HTRSET: four fields (no output type), and for the sample and
        # warm-up heaters (outputs 0-1) only, not the analog heater (output 2); the stock
        # parameters read the 335's five (see exclude_stock_heater_setup).
        self.exclude_stock_heater_setup(self.sample_heater, self.warmup_heater, self.analog_heater)

    @property
    def heater_range_on(self) -> str:  # type: ignore[override]
        return self.regulating_range()

    def role_output(self) -> Any:
        return self.sample_heater

    def heater_outputs(self) -> list[Any]:
        return [self.sample_heater, self.warmup_heater, self.analog_heater]

    def write_rules(self) -> list[Rule]:
        """The shared rules, and the scanner held on the control channel: parked elsewhere (or
        scanning on), the control channel's reading goes stale and the loop regulates on it."""
        def scan(admission: Admission) -> None:
            channel = admission.unit.arguments[0] if admission.unit.arguments else ""
            if not self._is_control_input(channel) or number(admission, 1, "autoscan", "") != 0:
                raise EnvelopeError(f"refused: the scanner may only stay on the control channel "
                                    f"({self.control_sensor()}) with autoscan off: on another channel the loop "
                                    "regulates on a stale reading; nothing was written")
        return [*super().write_rules(), Rule("SCAN", scan)]

    def role_sensor(self) -> Any:
        return self.submodules[f"ch{self.control_sensor():02d}"]

    def role_control_input(self) -> Any:
        return self.control_sensor()

    # --- role: no min/max capture (see the module docstring) ----------------------------------
    def reset_temperature_extremes(self) -> None:
        raise NoExtremesCapture(NO_CAPTURE)

    def temperature_extremes_k(self) -> tuple[float, float]:
        raise NoExtremesCapture(NO_CAPTURE)
