"""Tektronix DPO/MSO waveform transfer: `DATa:*` picks source, encoding, width and the
[STARt, STOP] slice; `WFMOutpre:*` describe it, volts = (raw - YOFf)·YMUlt + YZEro, time =
XZEro + i·XINcr; `CURVe?` sends the samples as ASCII integers or a definite block.

The model class supplies `horizontal()` -> (scale s/div, sample rate Hz, record length) and the
vertical settings `offsets`, `volts_per_div` and `vertical_at_capture`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sim_backend.scpi.commands import query, setting
from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.models._scope_common import stored
from sim_backend.scpi.models._tektronix_dpo_panel import NR3, LongChoice as Choice, TekPanelCommands
from sim_backend.scpi.params import Integer
from sim_backend.scpi.responses import definite_block

#: The 8-bit ADC spans 10.24 divisions.
ADC_DIVISIONS = 10.24
_ENCODINGS = Choice("ASCIi", "FAStest", "RIBinary", "RPBinary", "FPBinary", "SRIbinary", "SRPbinary", "SFPbinary")
_WAVE_SOURCES = Choice(*(f"{kind}{n}" for kind in ("CH", "MATH", "REF") for n in range(1, 5)))


class TekWaveformTransfer(TekPanelCommands):
    """DATa, WFMOutpre and CURVe?, alike on every DPO/MSO model."""

    data_source = stored("DATa:SOUrce", _WAVE_SOURCES, "data_source", "Waveform that CURVe? sends.")
    data_start = stored("DATa:STARt", Integer(1, None), "start", "First point sent (1-based).")
    data_stop = stored("DATa:STOP", Integer(1, None), "stop_index", "Last point sent (capped at the record).")
    wfm_encoding = stored("WFMOutpre:ENCdg", Choice("BINary", "ASCii"), "encoding", "Binary or ASCII CURVe? data.")
    wfm_format = stored("WFMOutpre:BN_Fmt", Choice("RI", "RP", "FP"), "format",
                        "Signed, unsigned (offset binary) or float samples.")
    wfm_order = stored("WFMOutpre:BYT_Or", Choice("LSB", "MSB"), "byte_order", "Byte order of samples.")

    @setting("DATa:ENCdg", _ENCODINGS)
    def data_encoding(self) -> str:
        """Encoding in one word: ASCII, [S]RIBINARY, [S]RPBINARY, [S]FPBINARY (S: LSB first)."""
        if self.encoding == "ASC":
            return "ASCII"
        return ("S" if self.byte_order == "LSB" else "") + self.format + "BINARY"

    @data_encoding.setter
    def data_encoding(self, encoding: str) -> None:
        if encoding == "ASCI":
            self.encoding = "ASC"
            return
        encoding = "RIB" if encoding == "FAS" else encoding
        self.encoding, self.byte_order = "BIN", "LSB" if encoding.startswith("S") else "MSB"
        self.format = encoding.lstrip("S")[:2]
        self.width = 4 if self.format == "FP" else min(self.width, 2)

    @setting("DATa:WIDth", Integer(1, 8))
    def data_width(self) -> int:
        """Bytes per sample (1 or 2; 4 for floats)."""
        return self.width

    @data_width.setter
    def data_width(self, width: int) -> None:
        if width not in ((4,) if self.format == "FP" else (1, 2)):
            raise ScpiError(-224)
        self.width = width

    wfm_width = replace(data_width, pattern="WFMOutpre:BYT_Nr")

    def _slice(self) -> tuple[object, int, int]:
        """(record or None, first index, points) of the DATa source and [STARt, STOP]."""
        number = int(self.data_source[2:]) if self.data_source.startswith("CH") else None
        record = self.current_record(number) if number else None
        length = record.codes.size if record is not None else self.horizontal()[2]
        first = self.start - 1
        return record, first, max(0, min(self.stop_index, length) - first)

    def _scaling(self, record) -> tuple[float, float, float]:
        """(YMUlt, YOFf, YZEro) of the data as sent."""
        byte_count = 2 if self.format == "FP" else self.width
        number = int(self.data_source[2:]) if self.data_source.startswith("CH") else 1
        offset, per_div = self.vertical_at_capture.get(number, (self.offsets[number], self.volts_per_div[number]))
        if record is None:
            lsb, centre = per_div * ADC_DIVISIONS / 2.0 ** (8 * byte_count), self.panel.channels[number].offset_v
        else:
            lsb, centre = self.word_codes(record, byte_count)[1], record.offset_v
        unsigned = 2.0 ** (8 * byte_count - 1) if self.format == "RP" and self.encoding == "BIN" else 0.0
        return lsb, (offset - centre) / lsb + unsigned, offset

    @query("CURVe")
    def curve(self) -> bytes:
        """Samples STARt..STOP of the DATa source: ASCII integers or a #<d><len> block."""
        record, first, points = self._slice()
        if record is None:
            raise ScpiError(-200, "Execution error;no waveform data for the data source")
        byte_count = 2 if self.format == "FP" else self.width
        raw = self.word_codes(record, byte_count)[0][first:first + points]
        if self.format == "RP" and self.encoding == "BIN":
            raw = raw + 2 ** (8 * byte_count - 1)    # offset binary
        if self.encoding == "ASC":
            return ",".join(str(int(v)) for v in raw).encode()
        order = "<" if self.byte_order == "LSB" else ">"
        kind = {"RI": "i", "RP": "u", "FP": "f"}[self.format] + str(self.width)
        return definite_block(raw.astype(np.dtype(order + kind)).tobytes())

    @query("WFMOutpre:NR_Pt")
    def points(self) -> int:
        """Points CURVe? sends."""
        return self._slice()[2]

    @query("WFMOutpre:XINcr")
    def x_increment(self) -> str:
        """Sample interval, s."""
        return NR3.format(1 / self.horizontal()[1])

    @query("WFMOutpre:XZEro")
    def x_zero(self) -> str:
        """Time of the first point sent, relative to the trigger, s."""
        record, first, _ = self._slice()
        x0, dx = (record.first_sample_s, record.sample_interval_s) if record is not None else \
            (self.panel.first_sample_s, self.panel.sample_interval_s)
        return NR3.format(x0 + first * dx)

    @query("WFMOutpre:YMUlt")
    def y_mult(self) -> str:
        """Volts per raw level, V."""
        return NR3.format(self._scaling(self._slice()[0])[0])

    @query("WFMOutpre:YOFf")
    def y_off(self) -> str:
        """Raw level of YZEro, levels."""
        return NR3.format(self._scaling(self._slice()[0])[1])

    @query("WFMOutpre:YZEro")
    def y_zero(self) -> str:
        """Volts at raw level YOFf, V."""
        return NR3.format(self._scaling(self._slice()[0])[2])

    @query("WFMOutpre:XUNit")
    def x_unit(self) -> str:
        """Horizontal unit."""
        return '"s"'

    @query("WFMOutpre:YUNit")
    def y_unit(self) -> str:
        """Vertical unit."""
        return '"V"'
