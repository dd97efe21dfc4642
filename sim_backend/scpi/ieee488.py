"""The IEEE 488.2 common commands, and SCPI's error queue query, as declared commands.

`Ieee488Personality` has the mandatory common commands (IEEE 488.2 §10) over the status model
in status.py. `ScpiPersonality` adds SYSTem:ERRor[:NEXT]?, SYSTem:ERRor:COUNt? and
SYSTem:VERSion?, which every SCPI instrument has. Lake Shore controllers, which have no error
queue, derive from `Ieee488Personality` with ``error_reporting = "status_only"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sim_backend.scpi.commands import command, query, setting
from sim_backend.scpi.errors import ESR_OPC
from sim_backend.scpi.params import Integer
from sim_backend.scpi.personality import Personality

_MASK = Integer(min=0, max=255)


@dataclass(frozen=True)
class Identity:
    """The four *IDN? fields."""

    manufacturer: str
    model: str
    serial: str = "0"
    firmware: str = "1.0"

    def answer(self) -> str:
        return f"{self.manufacturer},{self.model},{self.serial},{self.firmware}"


class Ieee488Personality(Personality):
    """Common commands. Subclasses set `identity` and override `reset`, `trigger`, `self_test`."""

    identity: Identity = Identity("NWLAB", "GENERIC")

    def reset(self) -> None:
        """*RST: return every setting to its reset value (status and error queue are kept)."""

    def trigger(self) -> None:
        """*TRG: a bus trigger. Models without one list "*TRG" in `omit`."""

    def self_test(self) -> int:
        """*TST?: 0 means passed."""
        return 0

    @query("*IDN")
    def _idn(self) -> str:
        """Manufacturer, model, serial number, firmware."""
        return self.identity.answer()

    @command("*RST")
    def _rst(self) -> None:
        """Reset settings."""
        self.reset()

    @command("*CLS")
    def _cls(self) -> None:
        """Clear the event status register and the error queue."""
        self.status.clear()

    @command("*OPC")
    def _opc(self) -> None:
        """Set the OPC bit of the event status register once pending operations are done."""
        self.wait_for_completion()
        self.status.esr |= ESR_OPC

    @query("*OPC")
    def _opc_query(self) -> str:
        """Answer 1 once pending operations are done."""
        self.wait_for_completion()
        return "1"

    @command("*WAI")
    def _wai(self) -> None:
        """Wait until pending operations are done."""
        self.wait_for_completion()

    @command("*TRG")
    def _trg(self) -> None:
        """Bus trigger."""
        self.trigger()

    @query("*ESR")
    def _esr(self) -> int:
        """Event status register; reading clears it."""
        return self.status.read_esr()

    @setting("*ESE", _MASK)
    def _ese(self) -> int:
        """Event status enable mask."""
        return self.status.ese

    @_ese.setter
    def _ese(self, mask: int) -> None:
        self.status.ese = mask

    @setting("*SRE", _MASK)
    def _sre(self) -> int:
        """Service request enable mask (bit 6 is ignored)."""
        return self.status.sre

    @_sre.setter
    def _sre(self, mask: int) -> None:
        self.status.sre = mask & ~0x40

    @query("*STB")
    def _stb(self) -> int:
        """Status byte: EAV 0x04, MAV 0x10, ESB 0x20, MSS 0x40, plus model bits."""
        return self.status.status_byte(self.message_available, self.device_status_bits())

    @query("*TST")
    def _tst(self) -> int:
        """Self-test result."""
        return self.self_test()


class ScpiPersonality(Ieee488Personality):
    """An SCPI instrument: common commands plus the SYSTem:ERRor queue."""

    scpi_version: ClassVar[str] = "1999.0"

    @query("SYSTem:ERRor[:NEXT]")
    def _system_error(self) -> str:
        """Oldest queued error as <code>,"<message>", or +0,"No error"."""
        return self.status.next_error().scpi()

    @query("SYSTem:ERRor:COUNt")
    def _system_error_count(self) -> int:
        """Number of queued errors."""
        return len(self.status.errors)

    @query("SYSTem:VERSion")
    def _system_version(self) -> str:
        """SCPI version the instrument complies with."""
        return self.scpi_version
