"""SCPI error numbers, their standard texts, and the exception a handler raises to queue one.

Codes and texts follow SCPI-99 Vol. 1 §21.8 (negative codes are standard; positive ones are
device-specific). Which event-status bit an error sets follows IEEE 488.2 §11.5.1.
"""

from __future__ import annotations

from types import MappingProxyType

#: Standard error texts, verbatim from SCPI-99 (as real instruments print them).
STANDARD_ERRORS = MappingProxyType(
    {
        0: "No error",
        -100: "Command error",
        -101: "Invalid character",
        -102: "Syntax error",
        -103: "Invalid separator",
        -104: "Data type error",
        -105: "GET not allowed",
        -108: "Parameter not allowed",
        -109: "Missing parameter",
        -110: "Command header error",
        -111: "Header separator error",
        -112: "Program mnemonic too long",
        -113: "Undefined header",
        -114: "Header suffix out of range",
        -120: "Numeric data error",
        -121: "Invalid character in number",
        -123: "Exponent too large",
        -124: "Too many digits",
        -128: "Numeric data not allowed",
        -130: "Suffix error",
        -131: "Invalid suffix",
        -134: "Suffix too long",
        -138: "Suffix not allowed",
        -140: "Character data error",
        -141: "Invalid character data",
        -144: "Character data too long",
        -148: "Character data not allowed",
        -150: "String data error",
        -151: "Invalid string data",
        -158: "String data not allowed",
        -160: "Block data error",
        -161: "Invalid block data",
        -168: "Block data not allowed",
        -200: "Execution error",
        -203: "Command protected",
        -220: "Parameter error",
        -221: "Settings conflict",
        -222: "Data out of range",
        -223: "Too much data",
        -224: "Illegal parameter value",
        -230: "Data corrupt or stale",
        -240: "Hardware error",
        -241: "Hardware missing",
        -300: "Device-specific error",
        -330: "Self-test failed",
        -350: "Queue overflow",
        -363: "Input buffer overrun",
        -400: "Query error",
        -410: "Query INTERRUPTED",
        -420: "Query UNTERMINATED",
        -430: "Query DEADLOCKED",
        -440: "Query UNTERMINATED after indefinite response",
    }
)

# Event status register bits (IEEE 488.2 §11.5.1.1).
ESR_OPC = 0x01  # operation complete
ESR_QYE = 0x04  # query error (-4xx)
ESR_DDE = 0x08  # device-dependent error (-3xx and positive codes)
ESR_EXE = 0x10  # execution error (-2xx)
ESR_CME = 0x20  # command error (-1xx)
ESR_PON = 0x80  # power on


def esr_bit(code: int) -> int:
    """The event-status bit an error sets: its class is the hundreds digit of the code."""
    if code > 0:
        return ESR_DDE
    return {1: ESR_CME, 2: ESR_EXE, 3: ESR_DDE, 4: ESR_QYE}.get(-code // 100, ESR_DDE)


class ScpiError(Exception):
    """Raised by the parser or by a command handler: the command is dropped and `code` queued.

    A handler must raise before it changes any state, so an erroneous command changes nothing.
    `message` overrides the standard text (SCPI allows a device-specific detail after ';',
    e.g. ``ScpiError(-221, "Settings conflict;burst needs a trigger source")``).
    """

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code},{message or STANDARD_ERRORS.get(code, '')}")
