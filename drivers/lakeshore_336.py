"""Lake Shore 336 as the temperature controller: the stock QCoDeS driver plus the role verbs.

Options (station file): `sensor_input` (A-D, the control sensor), `heater_output` (1 or 2, the
current outputs that can heat a stage), `heater_range` (low | medium | high while regulating).

Min/max capture (Model 336 manual, chapter 6 command list): `MNMXRST` resets the minimum and
maximum data of all inputs, `MDAT? <input>` returns `<min value>,<max value>` of one input
since then. The capture runs in the instrument, so the extremes cover the time between the two
queries, not only the moments they were sent. Neither QCoDeS' LakeshoreModel336 nor PyMeasure's
LakeShore3xx has parameters for them, so the role verbs send them. They set no level: the write guard has no
rule for them (MNMXRST resets data, not an output). The values are taken as kelvin: they come
in the input's preferred units, as a setpoint is read, and the role keeps those at kelvin (its
write guard refuses INTYPE).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from qcodes import validators as vals
from qcodes.instrument_drivers.Lakeshore import LakeshoreModel336
from qcodes.instrument_drivers.Lakeshore.Lakeshore_model_336 import LakeshoreModel336CurrentSource

from drivers._lakeshore import LakeshoreTemperatureRole
from contracts.envelope import Envelope


def parse_extremes(reply: str) -> tuple[float, float]:
    """`MDAT?`'s `<min value>,<max value>`; ValueError for anything else (read again)."""
    fields = reply.strip().split(",")
    if len(fields) != 2:
        raise ValueError(f"expected <min value>,<max value>, got {reply!r}")
    low, high = float(fields[0]), float(fields[1])
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(f"expected finite <min value> <= <max value>, got {reply!r}")
    return low, high


class Lakeshore336(LakeshoreTemperatureRole, LakeshoreModel336):
    """TemperatureController role on a Lake Shore 336."""

    heater_ranges = LakeshoreModel336CurrentSource.RANGES     # outputs 1 and 2 alike

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        super().check_options(options)
        if options.get("sensor_input", "A") not in ("A", "B", "C", "D"):
            raise ValueError(f"sensor_input {options['sensor_input']!r} is not one of A, B, C, D")
        if options.get("heater_output", 1) not in (1, 2):
            raise ValueError(f"heater_output {options['heater_output']!r} is not 1 or 2 (the outputs that heat)")

    def __init__(self, name: str, address: str, *, envelope: Envelope | None = None,
                 sensor_input: str = "A", heater_output: int = 1, heater_range: str = "medium",
                 **kwargs: Any) -> None:
        self.check_options(dict(sensor_input=sensor_input, heater_output=heater_output, heater_range=heater_range))
        self.envelope = envelope or Envelope("temperature_controller")
        heater_range = self.range_name(heater_range)       # the stock spelling
        self.station_heater_range = heater_range
        super().__init__(name, address, **kwargs)
        self.remember_address(address, kwargs.get("visalib"))
        self.control_sensor = self.add_parameter(
            "control_sensor", initial_value=sensor_input, vals=vals.Enum(sensor_input), unit="",
            get_cmd=None, set_cmd=None, docstring="Sensor input the role verbs read and regulate on (the "
            "station's: the write guard holds closed loop to it, so it cannot be changed at run time).")
        self.control_output = self.add_parameter(
            "control_output", initial_value=heater_output, vals=vals.Enum(heater_output), unit="",
            get_cmd=None, set_cmd=None, docstring="Heater output (1 or 2) the role verbs drive (the station's: "
            "the only one the write guard lets heat, so it cannot be changed at run time).")
        self.regulating_range = self.add_parameter(
            "regulating_range", initial_value=heater_range, vals=vals.Enum(*self.ranges_up_to(heater_range)),
            unit="", get_cmd=None, set_cmd=None,
            docstring="Heater range switched on by set_setpoint_k, at most the station's heater_range.")
        # Model 336 manual §6.6, HTRSET: four fields (no output type; that is the 335's), and
        # for the heater outputs 1-2 only (3-4 are analog voltage outputs without a heater
        # setup); the stock parameters read the 335's five (see exclude_stock_heater_setup).
        self.exclude_stock_heater_setup(self.output_1, self.output_2, self.output_3, self.output_4)

    @property
    def heater_range_on(self) -> str:  # type: ignore[override]
        return self.regulating_range()

    def role_output(self) -> Any:
        return self.output_1 if self.control_output() == 1 else self.output_2

    def heater_outputs(self) -> list[Any]:
        # 3 and 4 are analog voltage outputs, which may drive an external heater's amplifier
        return [self.output_1, self.output_2, self.output_3, self.output_4]

    def role_sensor(self) -> Any:
        return self.submodules[self.control_sensor()]

    def role_control_input(self) -> Any:
        return self.control_sensor()

    # --- role: the min/max capture (see the module docstring) ---------------------------------
    def reset_temperature_extremes(self) -> None:
        self.write("MNMXRST")
        self.raise_on_status_errors("reset_temperature_extremes (MNMXRST)")

    def temperature_extremes_k(self) -> tuple[float, float]:
        return self.ask_parsed(f"MDAT? {self.control_sensor()}", parse_extremes)
