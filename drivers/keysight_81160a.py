"""Keysight 81160A pulse/function generator (1 ns edges) as the pulse generator.

QCoDeS has no driver for it, so this is one: a `VisaInstrument` whose settings are declared as
parameters (unit, validator, docstring) following the Keysight 81150A/81160A Programming
Reference, "SCPI Command Reference" chapter. The channel number goes on the command's own
keyword (`:PULSe:WIDTh2 5e-9`, `:VOLTage2:HIGH 0.5`), as that reference writes them. A burst
comes from the arming model: `:ARM:SOURce MANual` arms on *TRG, `:TRIGger:COUNt n` pulses
per arming event, each started by the internal period (`:TRIGger:SOURce IMMediate`).
"""

from __future__ import annotations

from typing import Any

from qcodes import validators as vals
from qcodes.instrument import InstrumentChannel, VisaInstrument
from qcodes.parameters import create_on_off_val_mapping

from drivers._common import RecoveringVisa
from drivers._pulse import PulseTiming, check_dc_request, check_pulse_request, level_order, timing_order
from lab.envelope import Envelope

#: Data sheet limits (81160A, 50 ohm load where levels are concerned).
WIDTH_MIN_S, EDGE_MIN_S, PERIOD_MIN_S = 1.5e-9, 1e-9, 1 / 330e6


class Keysight81160AChannel(InstrumentChannel):
    """One output channel: waveform, pulse timing, levels, output and arming."""

    def __init__(self, parent: Keysight81160A, name: str, n: int) -> None:
        super().__init__(parent, name)
        on_off = create_on_off_val_mapping(on_val="1", off_val="0")

        def add(name: str, cmd: str, doc: str, **kwargs: Any) -> Any:
            return self.add_parameter(name, get_cmd=f"{cmd}?", set_cmd=f"{cmd} {{}}", docstring=doc, **kwargs)

        self.function = add("function", f":FUNCtion{n}", "Waveform shape.", unit="",
                            vals=vals.Enum("SIN", "SQU", "RAMP", "PULS", "NOIS", "DC", "USER"))
        self.pulse_period = add("pulse_period", f":PULSe:PERiod{n}", "Pulse period.", unit="s",
                                vals=vals.Numbers(PERIOD_MIN_S, 1e6), get_parser=float)
        self.pulse_width = add("pulse_width", f":PULSe:WIDTh{n}", "Pulse width at 50 % of the edges.", unit="s",
                               vals=vals.Numbers(WIDTH_MIN_S, 1e6), get_parser=float)
        self.edge_leading = add("edge_leading", f":PULSe:TRANsition{n}", "Leading edge time, 10-90 %.", unit="s",
                                vals=vals.Numbers(EDGE_MIN_S, 1e3), get_parser=float)
        self.edge_trailing = add("edge_trailing", f":PULSe:TRANsition{n}:TRAiling",
                                 "Trailing edge time, 90-10 % (setting it ends trailing-follows-leading).",
                                 unit="s", vals=vals.Numbers(EDGE_MIN_S, 1e3), get_parser=float)
        self.edge_trailing_auto = add("edge_trailing_auto", f":PULSe:TRANsition{n}:TRAiling:AUTO",
                                      "Trailing edge time follows the leading edge.", unit="",
                                      vals=vals.Bool(), val_mapping=on_off)
        self.level_high = add("level_high", f":VOLTage{n}:HIGH", "High level into the set load.", unit="V",
                              vals=vals.Numbers(-5.0, 5.0), get_parser=float)
        self.level_low = add("level_low", f":VOLTage{n}:LOW", "Low level into the set load.", unit="V",
                             vals=vals.Numbers(-5.0, 5.0), get_parser=float)
        self.offset = add("offset", f":VOLTage{n}:OFFSet", "Offset (the level of the DC function).", unit="V",
                          vals=vals.Numbers(-5.0, 5.0), get_parser=float)
        self.output = add("output", f":OUTPut{n}", "Normal output connected.", unit="",
                          vals=vals.Bool(), val_mapping=on_off)
        self.polarity = add("polarity", f":OUTPut{n}:POLarity", "Output polarity (INV: mirrored about the offset).",
                            unit="", vals=vals.Enum("NORM", "INV"))
        self.load = add("load", f":OUTPut{n}:LOAD", "Load the levels are specified into.", unit="Ohm",
                        vals=vals.Numbers(0.3, 1e6), get_parser=float)
        self.arm_source = add("arm_source", f":ARM:SOURce{n}", "Arming: IMM continuous, MAN on *TRG, EXT, INT2.",
                              unit="", vals=vals.Enum("IMM", "INT2", "EXT", "MAN"))
        self.trigger_count = add("trigger_count", f":TRIGger:COUNt{n}", "Pulses per arming event (burst length).",
                                 unit="", vals=vals.Ints(1, 2_147_483_647), get_parser=lambda s: int(float(s)))
        self.trigger_source = add("trigger_source", f":TRIGger:SOURce{n}", "What starts each pulse of a burst.",
                                  unit="", vals=vals.Enum("IMM", "INT2", "EXT"))


class Keysight81160A(RecoveringVisa, VisaInstrument):
    """PulseGenerator role on one channel of a Keysight 81160A."""

    default_terminator = "\n"

    def __init__(self, name: str, address: str, *, envelope: Envelope | None = None,
                 chip_amperes_per_volt: float | None = None, channel: int = 1, channels: int = 2,
                 **kwargs: Any) -> None:
        self.envelope = envelope or Envelope("pulse_generator")
        self.chip_amperes_per_volt = chip_amperes_per_volt
        super().__init__(name, address, **kwargs)
        self.remember_address(address, kwargs.get("visalib"))
        for n in range(1, channels + 1):
            self.add_submodule(f"ch{n}", Keysight81160AChannel(self, f"ch{n}", n))
        if channel not in range(1, channels + 1):
            raise ValueError(f"{name}: channel {channel} does not exist on a {channels}-channel 81160A")
        self.channel = channel
        self.role_channel: Keysight81160AChannel = self.submodules[f"ch{channel}"]  # type: ignore[assignment]
        self._last_config: tuple[str, dict[str, Any]] | None = None
        self._output_on = False
        self.connect_message()

    # --- role: PulseGenerator ---------------------------------------------------------------
    def configure_pulse(self, *, amplitude_v: float, width_s: float, edge_s: float, period_s: float,
                        count: int) -> None:
        check_pulse_request(self.envelope, self.chip_amperes_per_volt, amplitude_v=amplitude_v,
                            width_s=width_s, edge_s=edge_s, period_s=period_s, count=count)
        ch = self.role_channel
        ch.function("PULS")
        ch.edge_trailing_auto(True)
        present = PulseTiming(ch.pulse_period(), ch.pulse_width(), max(ch.edge_leading(), ch.edge_trailing()))
        target = PulseTiming(period_s, width_s, edge_s)
        setters = {"period": ch.pulse_period, "width": ch.pulse_width, "edge": ch.edge_leading}
        for name in timing_order(present, target, WIDTH_MIN_S):
            setters[name](getattr(target, f"{name}_s"))
        # A negative pulse is the positive one inverted about the offset, so it idles at 0 V.
        ch.polarity("NORM" if amplitude_v > 0 else "INV")
        high_v, low_v = (amplitude_v, 0.0) if amplitude_v > 0 else (0.0, amplitude_v)
        levels = {"high": (ch.level_high, high_v), "low": (ch.level_low, low_v)}
        for name in level_order(ch.level_high(), ch.level_low(), high_v, low_v):
            parameter, value = levels[name]
            parameter(value)
        ch.trigger_source("IMM")
        ch.trigger_count(count)
        ch.arm_source("MAN")
        self._last_config = ("pulse", dict(amplitude_v=amplitude_v, width_s=width_s, edge_s=edge_s,
                                           period_s=period_s, count=count))
        self.raise_on_errors("configure_pulse")

    def configure_dc(self, *, level_v: float) -> None:
        check_dc_request(self.envelope, self.chip_amperes_per_volt, level_v)
        ch = self.role_channel
        ch.arm_source("IMM")
        ch.function("DC")
        ch.offset(level_v)
        self._last_config = ("dc", dict(level_v=level_v))
        self.raise_on_errors("configure_dc")

    def set_output_enabled(self, enabled: bool) -> None:
        self.role_channel.output(enabled)
        self._output_on = enabled
        self.raise_on_errors("set_output_enabled")

    def trigger(self) -> None:
        # *OPC? returns once the trigger is executed, whatever the transport buffers.
        self.write("*TRG")
        self.ask("*OPC?")

    def safe_state(self) -> None:
        self.set_output_enabled(False)
        self.configure_dc(level_v=0.0)

    # --- recovery ---------------------------------------------------------------------------
    def reapply_role_settings(self) -> None:
        if self._last_config is not None:
            kind, settings = self._last_config
            (self.configure_pulse if kind == "pulse" else self.configure_dc)(**settings)
        self.role_channel.output(self._output_on)
