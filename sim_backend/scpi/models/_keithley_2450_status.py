"""Keithley 2450 status model, SCPI side (reference manual Appendix C "Status model" and the
:STATus subsystem of section 6).

Two programmable register sets, Operation and Questionable, each a condition, an event and an
enable register. Their bits do not have fixed meanings: :STATus:<set>:MAP <bit>, <set event>[,
<clear event>] maps instrument event numbers to a bit (0-14); the set event sets the bit in the
condition and event registers, the clear event clears it in the condition register. Reading
[:EVENt]? clears the event register. An enabled operation event sets OSB (status byte bit 7); an
enabled questionable event sets QSB (bit 3) and, as the Status Byte Register table (C-11) gives
it, MSB (bit 0).

Modelled events: 4917 a reading buffer emptied (0 % filled) and 4918 a reading buffer full
(100 % filled), the numbers of the manual's :STATus:QUEStionable:MAP example. Any event number
may be mapped; others are never raised here.

:STATus:PRESet clears the event and enable registers of both sets (not *SRE, *ESE or the queue);
:STATus:CLEar and *CLS clear the event registers. The Series 2400's measurement event register
(:STATus:MEASurement) is not on the 2450, so its headers are -113 Undefined header.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim_backend.scpi.commands import Command, command
from sim_backend.scpi.params import Integer

BUFFER_EMPTY_EVENT = 4917
BUFFER_FULL_EVENT = 4918
_BIT = Integer(0, 14)
_EVENT = Integer(0, 65535)
_MASK = Integer(0, 65535)
# Status byte bits the two sets drive (Appendix C, Status Byte Register).
_MSB, _QSB, _OSB = 0x01, 0x08, 0x80


@dataclass
class EventRegisterSet:
    """Condition, event and enable registers with their event map (bit -> (set, clear) event)."""

    condition: int = 0
    event: int = 0
    enable: int = 0
    mapping: dict[int, tuple[int, int]] = field(default_factory=dict)

    def occur(self, number: int) -> None:
        for bit, (set_event, clear_event) in self.mapping.items():
            if number and number == set_event:
                self.condition |= 1 << bit
                self.event |= 1 << bit
            elif number and number == clear_event:
                self.condition &= ~(1 << bit)

    @property
    def summary(self) -> bool:
        return bool(self.event & self.enable)


def _register_commands(key: str, node: str) -> dict[str, Command]:
    """The :STATus:<node> commands of one register set, kept in `self.status_sets[key]`."""
    path = f":STATus:{node}"

    def read_event(self) -> int:
        registers = self.status_sets[key]
        value, registers.event = registers.event, 0
        return value

    def put_enable(self, mask: int) -> None:
        self.status_sets[key].enable = mask

    def put_map(self, bit: int, set_event: int, clear_event: int | None) -> None:
        self.status_sets[key].mapping[bit] = (set_event, clear_event or 0)

    def get_map(self, bit: int) -> str:
        return "{},{}".format(*self.status_sets[key].mapping.get(bit, (0, 0)))

    return {
        f"status_{key}_event": Command(f"{path}[:EVENt]", query_handler=read_event,
                                       doc="Event register (reading clears it)."),
        f"status_{key}_condition": Command(f"{path}:CONDition", query_handler=lambda self: self.status_sets[key].condition,
                                           doc="Condition register."),
        f"status_{key}_enable": Command(f"{path}:ENABle", (_MASK,), (), put_enable,
                                        lambda self: self.status_sets[key].enable, "Enable register."),
        f"status_{key}_map": Command(f"{path}:MAP", (_BIT, _EVENT, Integer(0, 65535, optional=True)), (_BIT,),
                                     put_map, get_map, "Events that set and clear a bit."),
    }


class StatusCommands(type("_StatusSets", (), {**_register_commands("OPER", "OPERation"),
                                               **_register_commands("QUES", "QUEStionable")})):
    """The Operation and Questionable register sets (module docstring). The personality calls
    `reset_status_sets` at power-on and ORs `status_summary_bits` into the status byte."""

    def reset_status_sets(self) -> None:
        self.status_sets = {"OPER": EventRegisterSet(), "QUES": EventRegisterSet()}

    def raise_event(self, number: int) -> None:
        """An instrument event happened: set or clear the bits mapped to it."""
        for registers in self.status_sets.values():
            registers.occur(number)

    def status_summary_bits(self) -> int:
        bits = _OSB if self.status_sets["OPER"].summary else 0
        return bits | (_MSB | _QSB if self.status_sets["QUES"].summary else 0)

    def _clear_events(self) -> None:
        for registers in self.status_sets.values():
            registers.event = 0

    @command("*CLS")
    def _cls(self) -> None:
        """Clear the event registers (standard, operation, questionable) and the error queue."""
        self.status.clear()
        self._clear_events()

    @command(":STATus:CLEar")
    def status_clear(self) -> None:
        """Clear the event registers."""
        self.status.esr = 0
        self._clear_events()

    @command(":STATus:PRESet")
    def status_preset(self) -> None:
        """Clear the operation and questionable event and enable registers."""
        for registers in self.status_sets.values():
            registers.event = registers.enable = 0
