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
from drivers._pulse import PulseGeneratorRole, PulseHeaders, PulseTiming, write_levels, write_timing
from contracts.envelope import Envelope

#: Data sheet limits (81160A, 50 ohm load where levels are concerned).
WIDTH_MIN_S, EDGE_MIN_S, PERIOD_MIN_S = 1.5e-9, 1e-9, 1 / 330e6
#: The amplitude a pulse starts from after the DC function (`_leave_dc_at_zero`), around 0 V:
#: its first level written moves one of its levels to 0 V and must leave at least the model's
#: smallest amplitude, 50 mVpp into 50 ohm.
LEAVING_DC_AMPLITUDE_V = 0.12


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


class Keysight81160A(PulseGeneratorRole, RecoveringVisa, VisaInstrument):
    """PulseGenerator role on one channel of a Keysight 81160A."""

    # The channel goes on the keyword (`:VOLTage2:HIGH`) or on SOURce (`:SOURce2:VOLTage:HIGH`).
    pulse_headers = PulseHeaders(
        high="[:SOURce{m}]:VOLTage{n}[:LEVel][:IMMediate]:HIGH",
        low="[:SOURce{m}]:VOLTage{n}[:LEVel][:IMMediate]:LOW",
        offset="[:SOURce{m}]:VOLTage{n}[:LEVel][:IMMediate]:OFFSet",
        amplitude="[:SOURce{m}]:VOLTage{n}[:LEVel][:IMMediate][:AMPLitude]",
        width="[:SOURce{m}]:PULSe:WIDTh{n}", duty_cycle="[:SOURce{m}]:PULSe:DCYCle{n}",
        function="[:SOURce{m}]:FUNCtion{n}[:SHAPe]", output=":OUTPut{n}[:NORMal][:STATe]",
        apply="[:SOURce{m}]:APPLy{n}*", load=":OUTPut{n}:LOAD",
        fixed=(("[:SOURce{m}]:VOLTage{n}:UNIT", ("VPP",)),
               # channel 2 run at channel 1's frequency: a period set on the other channel
               (":TRACe:CHANnel[1][:STATe]", ("OFF", "0")),
               # the modulations add to the output or move the width, off only; a 5 ohm source
               # changes the level at a chip that is not a matched 50 ohm line
               *((f"[:SOURce{{m}}]:{kind}{{n}}[:STATe]", ("OFF", "0")) for kind in ("AM", "FM", "PM", "PWM", "FSKey")),
               (":OUTPut{n}:IMPedance[:INTernal]", ("50",))),
        # levels in amperes into the expected load: set them in volts
        refused=(("[:SOURce{m}]:CURRent{n}*", "levels set in amperes are not checked; set them in volts"),),
        # The pulse settings answer under FUNCtion too, and the load as the external impedance.
        aliases=(("[:SOURce{m}]:FUNCtion{n}:PULSe:WIDTh", "width"),
                 ("[:SOURce{m}]:FUNCtion{n}:PULSe:DCYCle", "duty_cycle"),
                 (":OUTPut{n}:IMPedance:EXTernal", "load")),
        hold=("[:SOURce{m}]:PULSe:HOLD{n}", "[:SOURce{m}]:FUNCtion{n}:PULSe:HOLD"),
        period=("[:SOURce{m}]:PULSe:PERiod{n}", "[:SOURce{m}]:FREQuency{n}*"))

    default_terminator = "\n"

    def __init__(self, name: str, address: str, *, envelope: Envelope | None = None, channel: int = 1,
                 channels: int = 2, **kwargs: Any) -> None:
        self.envelope = envelope or Envelope("pulse_generator")
        super().__init__(name, address, **kwargs)
        self.remember_address(address, kwargs.get("visalib"))
        for n in range(1, channels + 1):
            self.add_submodule(f"ch{n}", Keysight81160AChannel(self, f"ch{n}", n))
        if channel not in range(1, channels + 1):
            raise ValueError(f"{name}: channel {channel} does not exist on a {channels}-channel 81160A")
        self.channel = channel
        self.pulse_hold_command = f":PULSe:HOLD{channel} WIDTh"
        self.leaving_dc_amplitude_command = f":VOLTage{channel} {LEAVING_DC_AMPLITUDE_V}"
        self.role_channel: Keysight81160AChannel = self.submodules[f"ch{channel}"]  # type: ignore[assignment]
        self.connect_message()

    # --- what the shared PulseGenerator verbs write -----------------------------------------
    def _write_pulse(self, target: PulseTiming, amplitude_v: float, count: int) -> None:
        ch = self.role_channel
        ch.function("PULS")
        ch.edge_trailing_auto(True)
        n = self.channel
        period_s, width_s, leading_s, trailing_s = self.ask_numbers(
            (f":PULSe:PERiod{n}?", f":PULSe:WIDTh{n}?", f":PULSe:TRANsition{n}?", f":PULSe:TRANsition{n}:TRAiling?"))
        present = PulseTiming(period_s, width_s, max(leading_s, trailing_s))
        write_timing(present, target, WIDTH_MIN_S,
                     {"period": ch.pulse_period, "width": ch.pulse_width, "edge": ch.edge_leading})
        write_levels(amplitude_v, ch.polarity, ch.level_high, ch.level_low)
        ch.trigger_source("IMM")
        ch.trigger_count(count)
        ch.arm_source("MAN")

    def _write_dc(self, level_v: float) -> None:
        ch = self.role_channel
        ch.arm_source("IMM")
        ch.function("DC")
        ch.offset(level_v)

    def _switch_output(self, enabled: bool) -> None:
        self.role_channel.output(enabled)
