"""VISA resource names in one spelling, so that a station file's `gpib::5`, a driver's
`GPIB0::5::INSTR` and `usb::2391::...` / `USB0::0x0957::...` name the same instrument: for the
lab (one instrument, one entry, one run lock) and for the emulator (which device answers)."""

from __future__ import annotations

import functools

from pyvisa import rname

_RESOURCE_CLASSES = {"INSTR", "SOCKET", "INTFC", "BACKPLANE", "SERVANT", "RAW", "MEMACC"}


def canonical_resource_name(name: str) -> str:
    """pyvisa's canonical form of a VISA resource name (board 0, `inst0`, `::INSTR` filled in,
    USB vendor/product ids as hex numbers); raises `rname.InvalidResourceName`.

    VISA names are case-insensitive in the interface and resource class and never hold spaces;
    pyvisa's parser is case-sensitive, so those parts are upper-cased and spaces dropped first."""
    parts = "".join(name.split()).split("::")
    parts[0] = parts[0].upper()
    if parts[-1].upper() in _RESOURCE_CLASSES:
        parts[-1] = parts[-1].upper()
    parsed = rname.parse_resource_name("::".join(parts))
    if isinstance(parsed, (rname.USBInstr, rname.USBRaw)):
        parsed.manufacturer_id = f"0x{int(parsed.manufacturer_id, 0):04X}"
        parsed.model_code = f"0x{int(parsed.model_code, 0):04X}"
    return str(parsed)


# Cached: the emulator's sessions look their instrument's fault plan up by it at every exchange,
# and pyvisa's parser costs ~6 µs a call.
@functools.lru_cache(maxsize=1024)
def normalise_address(address: str) -> str:
    """The key two spellings of one resource share: the canonical name, upper case (VISA names
    are case-blind); text pyvisa does not parse is compared as itself, without spaces."""
    try:
        return canonical_resource_name(address).upper()
    except (rname.InvalidResourceName, ValueError):
        return "".join(address.split()).upper()
