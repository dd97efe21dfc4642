"""Keysight 81160A user waveform memory: one volatile waveform per channel, named copies in
nonvolatile memory (81150A/81160A User's Guide, Remote Programming Reference, DATA subsystem:
`:DATA[1|2]:DAC VOLATILE,<block>`, `:DATA[1|2]:COPY <name>[,VOLATILE]`, `:DATA[1|2]:DELete`,
`:DATA[1|2]:NVOLatile:CATalog?` / `:FREE?`; `:FORMat:BORDer` orders the block's bytes).

Waveforms are kept as DAC codes, as loaded; a channel on USER plays its waveform to the chip,
the codes' full scale mapped to its levels (a channel with no waveform loaded shows its
offset). A refused command changes nothing.
"""

from __future__ import annotations

import re

import numpy as np

from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.params import String

VOLATILE = "VOLATILE"
#: DAC codes run from -8191 to +8191 (14 bits); a waveform holds 2 to 512 k points.
DAC_CODE_MAX = 8191
POINTS_MIN, POINTS_MAX = 2, 524_288
#: Named waveforms the nonvolatile memory holds at once.
NONVOLATILE_SLOTS = 4
#: Up to 12 characters: a letter first, then letters, digits or '_'.
_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,11}")


def waveform_name(token: object) -> str:
    """A waveform name as sent (character data or a string), upper case as the instrument
    stores it; -224 if it is not a legal name."""
    name = str(getattr(token, "text", token)).upper()
    if not _NAME.fullmatch(name):
        raise ScpiError(-224, "Illegal parameter value;waveform name")
    return name


class WaveformMemory:
    """Volatile waveforms by channel and the named waveforms in nonvolatile memory."""

    def __init__(self) -> None:
        self.volatile: dict[int, np.ndarray] = {}
        self.nonvolatile: dict[str, np.ndarray] = {}
        self.big_endian = True           # FORMat:BORDer NORMal: most significant byte first

    def load_dac(self, channel: int, block: bytes) -> None:
        """DATA:DAC VOLATILE: a block of 16-bit DAC codes becomes the channel's volatile waveform."""
        if len(block) % 2:
            raise ScpiError(-161, "Invalid block data;odd byte count for 16-bit points")
        codes = np.frombuffer(block, dtype=">i2" if self.big_endian else "<i2")
        if not POINTS_MIN <= codes.size <= POINTS_MAX:
            raise ScpiError(-222, f"Data out of range;{codes.size} points, {POINTS_MIN} to {POINTS_MAX} allowed")
        if np.any(np.abs(codes) > DAC_CODE_MAX):
            raise ScpiError(-222, f"Data out of range;DAC codes run from -{DAC_CODE_MAX} to +{DAC_CODE_MAX}")
        self.volatile[channel] = codes.copy()

    def copy(self, channel: int, name: str) -> None:
        """DATA:COPY: the channel's volatile waveform into nonvolatile memory as `name`."""
        if name == VOLATILE:
            raise ScpiError(-224, "Illegal parameter value;cannot copy to VOLATILE")
        if channel not in self.volatile:
            raise ScpiError(-221, "Settings conflict;no waveform in volatile memory")
        if name not in self.nonvolatile and self.free() == 0:
            raise ScpiError(-225, "Out of memory;no free nonvolatile waveform slot")
        self.nonvolatile[name] = self.volatile[channel]

    def delete(self, name: str) -> None:
        """DATA:DELete: forget a named waveform (-224 if there is none)."""
        if name not in self.nonvolatile:
            raise ScpiError(-224, "Illegal parameter value;no such waveform")
        del self.nonvolatile[name]

    def free(self) -> int:
        return NONVOLATILE_SLOTS - len(self.nonvolatile)

    def points(self, channel: int, name: str) -> np.ndarray | None:
        """The waveform `name` (VOLATILE: the channel's own) in full scale, -1..+1; None if absent."""
        codes = self.volatile.get(channel) if name == VOLATILE else self.nonvolatile.get(name)
        return None if codes is None else codes / DAC_CODE_MAX

    def holds(self, name: str) -> bool:
        """Whether FUNCtion:USER may select `name`."""
        return name == VOLATILE or name in self.nonvolatile

    def catalog(self) -> str:
        """DATA:NVOLatile:CATalog?: the names as strings, or "" when there is none."""
        return ",".join(String().format(name) for name in self.nonvolatile) or String().format("")
