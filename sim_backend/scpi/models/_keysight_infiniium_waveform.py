"""Keysight Infiniium commands on the acquired record: `:MEASure:<kind>?` and waveform transfer.

`:WAVeform:SOURce|FORMat|BYTeorder|STReaming` pick what `:WAVeform:DATA?` sends (ASCii volts,
BYTE or WORD codes in a #0 or definite block); `:WAVeform:PREamble?` and the single queries
describe it. WORD data carry the 8-bit ADC codes in the high byte (16 bits when averaging):
volts = value * YINCrement + YORigin, time = XORigin + i * XINCrement.

The model class keeps the horizontal and vertical settings the preamble reports (`range_s`,
`position_s`, `reference`, `coupling`, `averaging`, `average_count`, `bandwidth_hz`).
"""

from __future__ import annotations

import numpy as np

from sim_backend.bench.scope import ChannelRecord
from sim_backend.scpi.commands import query
from sim_backend.scpi.models._scope_common import ScopePersonality, measure, stored
from sim_backend.scpi.params import Boolean, Choice, Raw
from sim_backend.scpi.responses import definite_block, indefinite_block

NR3 = "{:.10E}"
UNDEFINED = 9.99999e37    # what Infiniium answers for a measurement it cannot make
#: Where on the screen :TIMebase:REFerence puts the trigger point (fraction of the width).
REFERENCE = {"LEFT": 0.0, "CENT": 0.5, "RIGH": 1.0}
#: Declared for four channels; each instance widens the CHANnel options to its model's count.
SOURCES = Choice(*(f"CHANnel{n}" for n in range(1, 5)), *(f"FUNCtion{n}" for n in range(1, 17)),
                 *(f"WMEMory{n}" for n in range(1, 5)))
_FORMATS = {"ASC": 0, "BYTE": 1, "WORD": 2}
_COUPLING = {"AC": 0, "DC": 1, "DC50": 2, "LFR1": 3, "LFR2": 3}
# :MEASure:<header>? -> shared measurement kind (volts, seconds, hertz, percent)
_MEASUREMENTS = {
    "VAMPlitude": "amplitude", "VAVerage": "mean", "VBASe": "base", "VTOP": "top", "VMAX": "max",
    "VMIN": "min", "VPP": "pk2pk", "VRMS": "rms", "VMIDdle": "middle", "RISetime": "rise",
    "FALLtime": "fall", "PERiod": "period", "FREQuency": "frequency", "PWIDth": "pwidth",
    "NWIDth": "nwidth", "DUTYcycle": "pduty", "VLOWer": "vlow", "VUPPer": "vupp",
    "VOVershoot": "overshoot", "SLEWrate": "slew",
}


def with_channels(choice: Choice, channels: int) -> Choice:
    """`choice` with CHANnel1..`channels` in place of its CHANnel options; the others as they are."""
    others = [option for option in choice.options if not option.upper().startswith("CHANNEL")]
    return Choice(*(f"CHANnel{n}" for n in range(1, channels + 1)), *others, optional=choice.optional)


def _measurement(kind: str):
    def handler(self, *tokens: object) -> str:
        return self._measure(kind, *tokens)
    handler.__doc__ = f"Measurement {kind!r} (V, s, Hz or %) on a source; 9.99999E+37 when undefined."
    return handler


class InfiniiumWaveformCommands(ScopePersonality):
    """Measurements and waveform transfer, alike on every Infiniium model."""

    sources = SOURCES    # an instance widens it to its model's channel count

    measure_source = stored(":MEASure:SOURce", SOURCES, "measure_source", "Default measurement source.")

    def _measure(self, kind: str, *tokens: object) -> str:
        named = [t.upper() for t in tokens if isinstance(t, str) and t.upper()[:4] in ("CHAN", "FUNC", "WMEM")]
        source = self.sources.convert(named[0]) if named else self.measure_source
        channel = int(source[4:]) if source.startswith("CHAN") else None
        value = measure(kind, self.current_record(channel) if channel in self.panel.channels else None)
        return NR3.format(UNDEFINED if value is None else value)

    for _header, _kind in _MEASUREMENTS.items():
        vars()[f"measure_{_kind}"] = query(f":MEASure:{_header}", *(Raw(optional=True),) * 3)(_measurement(_kind))
    del _header, _kind

    # -- waveform transfer ---------------------------------------------------------------------

    waveform_source = stored(":WAVeform:SOURce", SOURCES, "wave_source", "Source of :WAVeform:DATA?.")
    waveform_format = stored(":WAVeform:FORMat", Choice("ASCii", "BYTE", "WORD"), "wave_format",
                             "Data format: ASCii volts, BYTE int8, WORD int16.")
    waveform_byte_order = stored(":WAVeform:BYTeorder", Choice("LSBFirst", "MSBFirst"), "byte_order",
                                 "Byte order of WORD data.")
    waveform_streaming = stored(":WAVeform:STReaming", Boolean(), "streaming",
                                "ON: :WAVeform:DATA? answers #0 blocks, OFF: definite blocks.")

    def _transfer(self) -> tuple[ChannelRecord | None, float, float, float, int, float]:
        """(record or None, y increment, y origin, x origin, points, x increment) of the source:
        what the preamble tells, without converting the record's codes (`waveform_data` does)."""
        panel, byte_count = self.panel, self._byte_count()
        number = int(self.wave_source[4:]) if self.wave_source.startswith("CHAN") else None
        if number is None:
            return None, 0.0, 0.0, 0.0, 0, 0.0
        record = self.current_record(number)
        if record is None:
            channel = panel.channels[number]
            return (None, channel.range_v / 2.0 ** (8 * byte_count), channel.offset_v, panel.first_sample_s,
                    panel.record_length, panel.sample_interval_s)
        return (record, self.word_lsb_v(record, byte_count), record.offset_v, record.first_sample_s,
                record.codes.size, record.sample_interval_s)

    def _byte_count(self) -> int:
        """Bytes per sample of the transfer format (ASCii is scaled from WORD codes)."""
        return 1 if self.wave_format == "BYTE" else 2

    @query(":WAVeform:PREamble")
    def preamble(self) -> str:
        """Format, type, points, count, x inc/origin/ref, y inc/origin/ref, coupling, display
        ranges, date, time, frame, mode, completion, x/y units, bandwidth limits."""
        _, yinc, yorg, xorg, points, xinc = self._transfer()
        panel = self.panel
        number = int(self.wave_source[4:]) if self.wave_source.startswith("CHAN") else 1
        channel = panel.channels[number]
        seconds = int(self.world.now_s())
        clock = f"{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}:00"
        fields = (_FORMATS[self.wave_format], 2 if self.averaging else 1, points,
                  self.average_count if self.averaging else 1, NR3.format(xinc), NR3.format(xorg), 0,
                  NR3.format(yinc), NR3.format(yorg), 0, _COUPLING[self.coupling[number]],
                  NR3.format(self.range_s), NR3.format(self.position_s - REFERENCE[self.reference] * self.range_s),
                  NR3.format(channel.range_v), NR3.format(channel.offset_v), '"24 NOV 2026"', f'"{clock}"',
                  f'"{self.identity.model}:{self.identity.serial}"', 0, 100, 2, 1,
                  NR3.format(self.bandwidth_hz or self.spec.analog_bandwidth_hz), NR3.format(0.0))
        return ",".join(str(f) for f in fields)

    @query(":WAVeform:DATA")
    def waveform_data(self) -> bytes:
        """The source's record: ASCii volts, BYTE or WORD codes in a #0 or definite block."""
        record, yinc, yorg, *_ = self._transfer()
        if record is None:
            self.queue_error(-230, "Data corrupt or stale;no acquired record for this source")
            codes = np.zeros(0, np.int32)
        else:
            codes = self.word_codes(record, self._byte_count())[0]
        if self.wave_format == "ASC":
            return ",".join(NR3.format(v) for v in codes * yinc + yorg).encode()
        dtype = np.dtype("i1" if self.wave_format == "BYTE" else "<i2" if self.byte_order == "LSBF" else ">i2")
        data = codes.astype(dtype).tobytes()
        return indefinite_block(data) if self.streaming else definite_block(data)

    @query(":WAVeform:POINts")
    def waveform_points(self) -> int:
        """Points in the source's record."""
        return self._transfer()[4]

    @query(":WAVeform:XINCrement")
    def x_increment(self) -> str:
        """Sample interval, s."""
        return NR3.format(self._transfer()[5])

    @query(":WAVeform:XORigin")
    def x_origin(self) -> str:
        """Time of the first sample relative to the trigger, s."""
        return NR3.format(self._transfer()[3])

    @query(":WAVeform:YINCrement")
    def y_increment(self) -> str:
        """Volts per data code, V."""
        return NR3.format(self._transfer()[1])

    @query(":WAVeform:YORigin")
    def y_origin(self) -> str:
        """Volts at data code 0, V."""
        return NR3.format(self._transfer()[2])

    @query(":WAVeform:YUNits")
    def y_units(self) -> str:
        """Vertical unit."""
        return "VOLT"

    @query(":WAVeform:XUNits")
    def x_units(self) -> str:
        """Horizontal unit."""
        return "SECOND"
