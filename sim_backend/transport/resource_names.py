"""VISA resource names in one canonical spelling, so a station file's `GPIB::12::INSTR` and a
driver's `GPIB0::12::INSTR` (or `usb::2391::...` and `USB0::0x0957::...`) find the same device."""

from __future__ import annotations

from pyvisa import rname

_RESOURCE_CLASSES = {"INSTR", "SOCKET", "INTFC", "BACKPLANE", "SERVANT", "RAW", "MEMACC"}


def normalize_resource_name(name: str) -> str:
    """Canonical form of a VISA resource name; raises `rname.InvalidResourceName`.

    VISA names are case-insensitive in the interface and resource class; pyvisa's parser is
    not, so those two parts are upper-cased first. USB vendor/product ids are compared as
    numbers.
    """
    parts = name.strip().split("::")
    parts[0] = parts[0].upper()
    if parts[-1].upper() in _RESOURCE_CLASSES:
        parts[-1] = parts[-1].upper()
    parsed = rname.parse_resource_name("::".join(parts))
    if isinstance(parsed, (rname.USBInstr, rname.USBRaw)):
        parsed.manufacturer_id = f"0x{int(parsed.manufacturer_id, 0):04X}"
        parsed.model_code = f"0x{int(parsed.model_code, 0):04X}"
    return str(parsed)
