"""Keysight 33500B / 33600A as the pulse generator: the stock QCoDeS 33xxx driver plus role verbs.

A burst of `count` pulses from 0 V to amplitude_v, started by a bus trigger (*TRG). Commands
follow the 33500/33600 Series Operating and Service Guide, "SCPI Programming Reference":
`FUNCtion PULSe`, `FUNCtion:PULSe:PERiod|WIDTh|TRANsition[:BOTH]`, `VOLTage:HIGH|LOW`,
`OUTPut:POLarity`, `TRIGger:SOURce BUS`, `BURSt:MODE TRIGgered`, `BURSt:NCYCles`,
`BURSt:STATe`, `*TRG`, `OUTPut`, `SYSTem:ERRor?`.
"""

from __future__ import annotations

from typing import Any

from qcodes import validators as vals
from qcodes.instrument_drivers.Keysight.KeysightAgilent_33XXX import Keysight33xxx

from drivers._common import RecoveringVisa
from drivers._pulse import PulseGeneratorRole, PulseHeaders, PulseTiming, write_levels, write_timing
from contracts.envelope import Envelope

#: The 33500B's minimum pulse width (the 33600A's is 5 ns): a safe margin for write ordering.
WIDTH_MIN_S = 16e-9
#: The amplitude a pulse starts from after the DC function (`_leave_dc_at_zero`), around 0 V:
#: its first level written moves one of its levels to 0 V and must leave at least the model's
#: smallest amplitude, 1 mVpp into 50 ohm.
LEAVING_DC_AMPLITUDE_V = 0.01


class Keysight33500B(PulseGeneratorRole, RecoveringVisa, Keysight33xxx):
    """PulseGenerator role on one channel of a Keysight 33500B/33600A."""

    pulse_headers = PulseHeaders(
        high="[:SOURce{n}]:VOLTage[:LEVel][:IMMediate]:HIGH", low="[:SOURce{n}]:VOLTage[:LEVel][:IMMediate]:LOW",
        offset="[:SOURce{n}]:VOLTage[:LEVel][:IMMediate]:OFFSet",
        amplitude="[:SOURce{n}]:VOLTage[:LEVel][:IMMediate][:AMPLitude]",
        width="[:SOURce{n}]:FUNCtion:PULSe:WIDTh", duty_cycle="[:SOURce{n}]:FUNCtion:PULSe:DCYCle",
        function="[:SOURce{n}]:FUNCtion[:SHAPe]", output=":OUTPut{n}[:STATe]", apply="[:SOURce{n}]:APPLy*",
        load=":OUTPut{n}:LOAD",
        fixed=(("[:SOURce{n}]:VOLTage:UNIT", ("VPP",)),
               # what adds to a channel's output or copies levels between channels, off only:
               # the other channel fed in, tracking, coupled amplitudes, the modulations; and
               # coupled frequencies (a period set on the other channel)
               ("[:SOURce{n}]:COMBine:FEED", ("NONE",)), ("[:SOURce{n}]:TRACk", ("OFF", "0")),
               ("[:SOURce{n}]:VOLTage:COUPle[:STATe]", ("OFF", "0")),
               ("[:SOURce{n}]:FREQuency:COUPle[:STATe]", ("OFF", "0")),
               *((f"[:SOURce{{n}}]:{kind}:STATe", ("OFF", "0"))
                 for kind in ("AM", "FM", "PM", "PWM", "SUM", "FSKey", "BPSK"))),
        hold=("[:SOURce{n}]:FUNCtion:PULSe:HOLD",),
        period=("[:SOURce{n}]:FUNCtion:PULSe:PERiod", "[:SOURce{n}]:FREQuency*"))

    def __init__(self, name: str, address: str, *, envelope: Envelope | None = None, channel: int = 1,
                 **kwargs: Any) -> None:
        self.envelope = envelope or Envelope("pulse_generator")
        super().__init__(name, address, **kwargs)
        self.remember_address(address, kwargs.get("visalib"))
        if channel not in range(1, self.num_channels + 1):
            raise ValueError(f"{name}: channel {channel} does not exist on a {self.model}")
        self.channel = channel
        self.pulse_hold_command = f"SOURce{channel}:FUNCtion:PULSe:HOLD WIDTh"
        self.leaving_dc_amplitude_command = f"SOURce{channel}:VOLTage {LEAVING_DC_AMPLITUDE_V}"
        self.role_channel = self.submodules[f"ch{channel}"]
        _declare_pulse_parameters(self.role_channel, channel)

    # --- what the shared PulseGenerator verbs write -----------------------------------------
    def _write_pulse(self, target: PulseTiming, amplitude_v: float, count: int) -> None:
        ch = self.role_channel
        ch.function_type("PULS")
        pulse = f":SOURce{self.channel}:FUNCtion:PULSe"
        period_s, width_s, leading_s, trailing_s = self.ask_numbers(
            (f"{pulse}:PERiod?", f"{pulse}:WIDTh?", f"{pulse}:TRANsition:LEADing?", f"{pulse}:TRANsition:TRAiling?"))
        present = PulseTiming(period_s, width_s, max(leading_s, trailing_s))
        write_timing(present, target, WIDTH_MIN_S,
                     {"period": ch.pulse_period, "width": ch.pulse_width, "edge": ch.pulse_edge})
        write_levels(amplitude_v, ch.output_polarity, ch.level_high, ch.level_low)
        ch.trigger_source("BUS")
        ch.burst_mode("N Cycle")
        ch.burst_ncycles(count)
        ch.burst_state("ON")

    def _write_dc(self, level_v: float) -> None:
        ch = self.role_channel
        ch.burst_state("OFF")
        ch.function_type("DC")
        ch.offset(level_v)

    def _switch_output(self, enabled: bool) -> None:
        self.role_channel.output("ON" if enabled else "OFF")


def _declare_pulse_parameters(ch: Any, n: int) -> None:
    """Pulse settings the stock channel lacks, declared like its own."""
    ch.add_parameter("pulse_period", label=f"Channel {n} pulse period", unit="s", vals=vals.Numbers(8.3e-9, 1e6),
                     get_cmd=f"SOURce{n}:FUNCtion:PULSe:PERiod?", set_cmd=f"SOURce{n}:FUNCtion:PULSe:PERiod {{:.9g}}",
                     get_parser=float, docstring="Pulse period (the inverse of the frequency).")
    ch.add_parameter("pulse_edge", label=f"Channel {n} pulse edges", unit="s", vals=vals.Numbers(2.9e-9, 1e-6),
                     get_cmd=f"SOURce{n}:FUNCtion:PULSe:TRANsition?",
                     set_cmd=f"SOURce{n}:FUNCtion:PULSe:TRANsition {{:.9g}}",
                     get_parser=float, docstring="Both edge times, 10-90 %.")
    ch.add_parameter("pulse_edge_leading", label=f"Channel {n} leading edge", unit="s",
                     vals=vals.Numbers(2.9e-9, 1e-6), get_cmd=f"SOURce{n}:FUNCtion:PULSe:TRANsition:LEADing?",
                     set_cmd=f"SOURce{n}:FUNCtion:PULSe:TRANsition:LEADing {{:.9g}}",
                     get_parser=float, docstring="Leading edge time, 10-90 %.")
    ch.add_parameter("pulse_edge_trailing", label=f"Channel {n} trailing edge", unit="s",
                     vals=vals.Numbers(2.9e-9, 1e-6), get_cmd=f"SOURce{n}:FUNCtion:PULSe:TRANsition:TRAiling?",
                     set_cmd=f"SOURce{n}:FUNCtion:PULSe:TRANsition:TRAiling {{:.9g}}",
                     get_parser=float, docstring="Trailing edge time, 90-10 %.")
    ch.add_parameter("level_high", label=f"Channel {n} high level", unit="V", vals=vals.Numbers(-10, 10),
                     get_cmd=f"SOURce{n}:VOLTage:HIGH?", set_cmd=f"SOURce{n}:VOLTage:HIGH {{:.9g}}",
                     get_parser=float, docstring="High level into the set load; setting it keeps the low level.")
    ch.add_parameter("level_low", label=f"Channel {n} low level", unit="V", vals=vals.Numbers(-10, 10),
                     get_cmd=f"SOURce{n}:VOLTage:LOW?", set_cmd=f"SOURce{n}:VOLTage:LOW {{:.9g}}",
                     get_parser=float, docstring="Low level into the set load; setting it keeps the high level.")
