"""An example personality: a two-channel pulse generator with a trace memory.

It exists to show how a model is declared and to exercise the core in tests; it models no
real instrument. Real personalities (keysight_33500b.py, …) are built the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim_backend.scpi.commands import command, query, setting
from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.ieee488 import Identity, ScpiPersonality
from sim_backend.scpi.params import Binary, Boolean, Choice, Integer, Real, String
from sim_backend.scpi.responses import NR3_KEYSIGHT, definite_block, indefinite_block

_PERIOD_MIN_S = 1 / 30e6


@dataclass
class _Channel:
    amplitude_v: float = 0.1
    offset_v: float = 0.0
    frequency_hz: float = 1e3
    function: str = "SIN"
    width_s: float = 100e-9
    cycles: int = 1
    output: bool = False
    arbitrary: dict[str, bytes] = field(default_factory=dict)


class ExamplePulser(ScpiPersonality):
    """Two channels (SOURce1|2, OUTPut1|2), pulses, bursts, arbitrary data, a trace memory."""

    identity = Identity("NWLAB", "EXAMPLE-PG2", "0001", "1.0")
    suffix_limits = {"SOUR": 2, "OUTP": 2}

    def __init__(self) -> None:
        super().__init__()
        self.commands_seen = 0  # stands for the bench clock the hook would advance
        self.triggers = 0
        self.reset()

    def reset(self) -> None:
        self.channels = {1: _Channel(), 2: _Channel()}
        self.trace = b""
        self.streaming = False

    def before_command(self, command: object) -> None:
        self.commands_seen += 1

    def trigger(self) -> None:
        self.triggers += 1

    @setting("[SOURce#]:VOLTage[:LEVel][:IMMediate][:AMPLitude]", Real("V", 1e-3, 10.0, 0.1, NR3_KEYSIGHT))
    def amplitude(self, channel: int) -> float:
        """Peak-to-peak amplitude, V."""
        return self.channels[channel].amplitude_v

    @amplitude.setter
    def amplitude(self, channel: int, volts: float) -> None:
        self.channels[channel].amplitude_v = volts

    @setting("[SOURce#]:VOLTage:OFFSet", Real("V", -5.0, 5.0, 0.0))
    def offset(self, channel: int) -> float:
        """DC offset, V."""
        return self.channels[channel].offset_v

    @offset.setter
    def offset(self, channel: int, volts: float) -> None:
        self.channels[channel].offset_v = volts

    @setting("[SOURce#]:FREQuency[:CW]", Real("HZ", 1e-3, 30e6, 1e3))
    def frequency(self, channel: int) -> float:
        """Repetition frequency, Hz; the pulse must fit in one period."""
        return self.channels[channel].frequency_hz

    @frequency.setter
    def frequency(self, channel: int, hertz: float) -> None:
        if self.channels[channel].width_s >= 1 / hertz:
            raise ScpiError(-221, "Settings conflict;pulse width exceeds period")
        self.channels[channel].frequency_hz = hertz

    @setting("[SOURce#]:FUNCtion[:SHAPe]", Choice("SINusoid", "SQUare", "PULSe", "ARBitrary"))
    def function(self, channel: int) -> str:
        """Waveform shape."""
        return self.channels[channel].function

    @function.setter
    def function(self, channel: int, shape: str) -> None:
        self.channels[channel].function = shape

    @setting("[SOURce#]:FUNCtion:PULSe:WIDTh", Real("S", 16e-9, 1e3, 100e-9))
    def width(self, channel: int) -> float:
        """Pulse width, s; must be shorter than the period."""
        return self.channels[channel].width_s

    @width.setter
    def width(self, channel: int, seconds: float) -> None:
        if seconds >= 1 / self.channels[channel].frequency_hz:
            raise ScpiError(-221)
        self.channels[channel].width_s = seconds

    @setting("[SOURce#]:BURSt:NCYCles", Integer(1, 100_000_000, 1))
    def cycles(self, channel: int) -> int:
        """Cycles per burst."""
        return self.channels[channel].cycles

    @cycles.setter
    def cycles(self, channel: int, count: int) -> None:
        self.channels[channel].cycles = count

    @setting("OUTPut#[:STATe]", Boolean())
    def output(self, channel: int) -> bool:
        """Output on or off."""
        return self.channels[channel].output

    @output.setter
    def output(self, channel: int, state: bool) -> None:
        self.channels[channel].output = state

    @setting("[SOURce#]:DATA:ARBitrary", String(max_length=12), Binary(), query_params=(String(),))
    def arbitrary(self, channel: int, name: str) -> bytes:
        """Arbitrary waveform memory: set with a name and a block; query by name."""
        try:
            return definite_block(self.channels[channel].arbitrary[name])
        except KeyError:
            raise ScpiError(-224, "Illegal parameter value;no such waveform") from None

    @arbitrary.setter
    def arbitrary(self, channel: int, name: str, data: bytes) -> None:
        self.channels[channel].arbitrary[name] = data

    @command(":DIGitize")
    def digitize(self) -> None:
        """Acquire a trace: here, the amplitudes of both channels as text bytes."""
        self.trace = ",".join(f"{c.amplitude_v:g}" for c in self.channels.values()).encode()

    @setting(":WAVeform:STReaming", Boolean())
    def streaming_mode(self) -> bool:
        """ON: :WAVeform:DATA? answers an indefinite block (#0…), OFF: a definite one."""
        return self.streaming

    @streaming_mode.setter
    def streaming_mode(self, state: bool) -> None:
        self.streaming = state

    @query(":WAVeform:DATA")
    def waveform_data(self) -> bytes:
        """The last acquired trace as a block."""
        return indefinite_block(self.trace) if self.streaming else definite_block(self.trace)

    @query("MEASure:VOLTage[:DC]", Choice("CHANnel1", "CHANnel2", optional=True))
    def measure(self, source: str | None) -> float:
        """Offset of a channel (CHAN1 when no source is given), V."""
        return self.channels[2 if source == "CHAN2" else 1].offset_v
