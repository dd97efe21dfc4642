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
from drivers._pulse import PulseTiming, check_dc_request, check_pulse_request, level_order, timing_order
from lab.envelope import Envelope

#: The 33500B's minimum pulse width (the 33600A's is 5 ns): a safe margin for write ordering.
WIDTH_MIN_S = 16e-9


class Keysight33500B(RecoveringVisa, Keysight33xxx):
    """PulseGenerator role on one channel of a Keysight 33500B/33600A."""

    def __init__(self, name: str, address: str, *, envelope: Envelope | None = None,
                 chip_amperes_per_volt: float | None = None, channel: int = 1, **kwargs: Any) -> None:
        self.envelope = envelope or Envelope("pulse_generator")
        self.chip_amperes_per_volt = chip_amperes_per_volt
        super().__init__(name, address, **kwargs)
        self.remember_address(address, kwargs.get("visalib"))
        if channel not in range(1, self.num_channels + 1):
            raise ValueError(f"{name}: channel {channel} does not exist on a {self.model}")
        self.channel = channel
        self.role_channel = self.submodules[f"ch{channel}"]
        _declare_pulse_parameters(self.role_channel, channel)
        self._last_config: tuple[str, dict[str, Any]] | None = None
        self._output_on = False

    # --- role: PulseGenerator ---------------------------------------------------------------
    def configure_pulse(self, *, amplitude_v: float, width_s: float, edge_s: float, period_s: float,
                        count: int) -> None:
        check_pulse_request(self.envelope, self.chip_amperes_per_volt, amplitude_v=amplitude_v,
                            width_s=width_s, edge_s=edge_s, period_s=period_s, count=count)
        ch = self.role_channel
        ch.function_type("PULS")
        present = PulseTiming(ch.pulse_period(), ch.pulse_width(), max(ch.pulse_edge_leading(),
                                                                         ch.pulse_edge_trailing()))
        target = PulseTiming(period_s, width_s, edge_s)
        setters = {"period": ch.pulse_period, "width": ch.pulse_width, "edge": ch.pulse_edge}
        for name in timing_order(present, target, WIDTH_MIN_S):
            setters[name](getattr(target, f"{name}_s"))
        # A negative pulse is the positive one inverted about the offset, so it idles at 0 V.
        ch.output_polarity("NORM" if amplitude_v > 0 else "INV")
        high_v, low_v = (amplitude_v, 0.0) if amplitude_v > 0 else (0.0, amplitude_v)
        levels = {"high": (ch.level_high, high_v), "low": (ch.level_low, low_v)}
        for name in level_order(ch.level_high(), ch.level_low(), high_v, low_v):
            parameter, value = levels[name]
            parameter(value)
        ch.trigger_source("BUS")
        ch.burst_mode("N Cycle")
        ch.burst_ncycles(count)
        ch.burst_state("ON")
        self._last_config = ("pulse", dict(amplitude_v=amplitude_v, width_s=width_s, edge_s=edge_s,
                                           period_s=period_s, count=count))
        self.raise_on_errors("configure_pulse")

    def configure_dc(self, *, level_v: float) -> None:
        check_dc_request(self.envelope, self.chip_amperes_per_volt, level_v)
        ch = self.role_channel
        ch.burst_state("OFF")
        ch.function_type("DC")
        ch.offset(level_v)
        self._last_config = ("dc", dict(level_v=level_v))
        self.raise_on_errors("configure_dc")

    def set_output_enabled(self, enabled: bool) -> None:
        self.role_channel.output("ON" if enabled else "OFF")
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
        self.role_channel.output("ON" if self._output_on else "OFF")


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
