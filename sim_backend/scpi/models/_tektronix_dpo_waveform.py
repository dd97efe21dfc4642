"""Tektronix DPO/MSO waveform transfer: `DATa:*` picks source, encoding, width and the
[STARt, STOP] slice; `WFMOutpre:*` describe it, volts = (raw - YOFf)·YMUlt + YZEro, time =
XZEro + XINcr·(i - PT_Off) with PT_Off 0 (XZEro is the time of the first point sent); `CURVe?`
sends the samples as ASCII integers or a definite block.

`WFMOutpre?` ("This query-only command returns the waveform formatting data for the waveform
specified by the DATa:SOUrce command") answers the whole preamble in the order of the example
in Tektronix's TDS5000B Online Programmer Guide (p. 813; the DPO7000 series' waveform transfer
group comes from that family): ``:WFMOUTPRE:BYT_NR 2;BIT_NR 16;ENCDG BINARY;BN_FMT RI;BYT_OR
MSB;WFID "Ch1, DC coupling, ...";NR_PT 1000;PT_FMT Y;XUNIT "s";XINCR 80.0000E-9;XZERO 0.0000;
PT_OFF 625;YUNIT "V";YMULT 31.2500E-6;YOFF 0.0000;YZERO 0.0000;NR_FR 3`` — with HEADer OFF the
values alone, separated by semicolons.

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
from sim_backend.scpi.responses import definite_block, quoted

#: The 8-bit ADC spans 10.24 divisions.
ADC_DIVISIONS = 10.24
_ENCODINGS = Choice("ASCIi", "FAStest", "RIBinary", "RPBinary", "FPBinary", "SRIbinary", "SRPbinary", "SFPbinary")
_WAVE_SOURCES = Choice(*(f"{kind}{n}" for kind in ("CH", "MATH", "REF") for n in range(1, 5)))
#: ACQuire:MODe (short form) -> the mode as WFId spells it.
_ACQUISITION_MODE_NAMES = {"SAM": "Sample", "PEAK": "Peak detect", "HIR": "Hi Res", "AVE": "Average",
                           "WFMDB": "WfmDB", "ENV": "Envelope"}
#: (scale, SI prefix) from the largest down, for the scales WFId quotes.
_SI_PREFIXES = ((1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"))


class TekWaveformTransfer(TekPanelCommands):
    """DATa, WFMOutpre and CURVe?, alike on every DPO/MSO model."""

    _self_headed = frozenset({"WFMOutpre"})   # the preamble names each of its fields itself

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

    @setting("WFMOutpre:BIT_Nr", Integer(8, 64))
    def wfm_bits(self) -> int:
        """Bits per sample: 8 · BYT_Nr (setting it sets BYT_Nr)."""
        return 8 * self.width

    @wfm_bits.setter
    def wfm_bits(self, bits: int) -> None:
        if bits % 8:
            raise ScpiError(-224)
        self.data_width.set_handler(self, bits // 8)

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

    @query("WFMOutpre:WFId")
    def waveform_id(self) -> str:
        """The source described: channel, coupling, V/div, s/div, points, acquisition mode."""
        number = int(self.data_source[2:]) if self.data_source.startswith("CH") else 1
        mode = _ACQUISITION_MODE_NAMES.get(self.acquire_mode, "Sample")
        return quoted(f"{self.data_source.capitalize()}, {self.couplings[number]} coupling, "
                      f"{engineering(self.volts_per_div[number], 'V')}/div, "
                      f"{engineering(self.horizontal()[0], 's')}/div, {self._slice()[2]} points, {mode} mode")

    @query("WFMOutpre:PT_Fmt")
    def point_format(self) -> str:
        """Y: one value per point (ENV, min/max pairs, is not acquired here)."""
        return "Y"

    @query("WFMOutpre:PT_Off")
    def point_offset(self) -> int:
        """Trigger point relative to the first point sent: 0, as XZEro carries the time."""
        return 0

    @query("WFMOutpre:NR_FR")
    def frames(self) -> int:
        """Frames in the waveform (FastFrame off: 1)."""
        return 1

    @query("WFMOutpre")
    def preamble(self) -> str:
        """The whole preamble; with HEADer ON each field carries its name, as the manual shows."""
        fields = (("BYT_NR", self.data_width.query_handler(self)), ("BIT_NR", self.wfm_bits.query_handler(self)),
                  ("ENCDG", "BINARY" if self.encoding == "BIN" else "ASCII"), ("BN_FMT", self.format),
                  ("BYT_OR", self.byte_order), ("WFID", self.waveform_id.query_handler(self)),
                  ("NR_PT", self.points.query_handler(self)), ("PT_FMT", self.point_format.query_handler(self)),
                  ("XUNIT", self.x_unit.query_handler(self)), ("XINCR", self.x_increment.query_handler(self)),
                  ("XZERO", self.x_zero.query_handler(self)), ("PT_OFF", self.point_offset.query_handler(self)),
                  ("YUNIT", self.y_unit.query_handler(self)), ("YMULT", self.y_mult.query_handler(self)),
                  ("YOFF", self.y_off.query_handler(self)), ("YZERO", self.y_zero.query_handler(self)),
                  ("NR_FR", self.frames.query_handler(self)))
        if self.header_on:
            return ":WFMOUTPRE:" + ";".join(f"{name} {value}" for name, value in fields)
        return ";".join(str(value) for _, value in fields)


def engineering(value: float, unit: str) -> str:
    """Four significant digits with an SI prefix, as Tek writes scales: ``100.0mV``, ``4.000us``."""
    scale, prefix = next((pair for pair in _SI_PREFIXES if abs(value) >= pair[0]), _SI_PREFIXES[-1])
    number = value / scale
    return f"{number:.{max(0, 4 - len(str(int(abs(number)))))}f}{prefix}{unit}"

