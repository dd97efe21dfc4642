"""VISA attributes of an in-process session: defaults per interface, which ones are read-only.

Defaults follow the VISA specification (VPP-4.3) so drivers that read an attribute before
setting it see what a real VISA library would report.
"""

from __future__ import annotations

from typing import Any

from pyvisa import constants, rname

A = constants.ResourceAttribute

_COMMON: dict[A, Any] = {
    A.timeout_value: 2000,  # ms, the VISA default
    A.termchar: 0x0A,
    A.termchar_enabled: constants.VI_FALSE,
    A.send_end_enabled: constants.VI_TRUE,
    A.suppress_end_enabled: constants.VI_FALSE,
    A.io_prot: constants.IOProtocol.normal,
    A.max_queue_length: 50,
    A.trigger_id: constants.VI_TRIG_SW,
    A.file_append_enabled: constants.VI_FALSE,
    A.dma_allow_enabled: constants.VI_FALSE,
    A.resource_manufacturer_name: "nwlab emulator",
}

READ_ONLY = frozenset(
    {
        A.resource_name,
        A.resource_class,
        A.interface_type,
        A.interface_number,
        A.resource_manufacturer_name,
        A.tcpip_address,
        A.tcpip_hostname,
        A.tcpip_port,
        A.tcpip_device_name,
        A.gpib_primary_address,
        A.gpib_secondary_address,
        A.manufacturer_id,
        A.model_code,
        A.usb_serial_number,
        A.usb_interface_number,
    }
)


def default_attributes(parsed: rname.ResourceName) -> dict[A, Any]:
    """The attribute table of a freshly opened session to `parsed`."""
    attrs = dict(_COMMON)
    attrs[A.resource_name] = str(parsed)
    attrs[A.resource_class] = parsed.resource_class
    attrs[A.interface_type] = parsed.interface_type_const
    board = getattr(parsed, "board", "0")
    attrs[A.interface_number] = int(board) if str(board).isdigit() else 0
    if isinstance(parsed, (rname.TCPIPSocket, rname.TCPIPInstr)):
        attrs[A.tcpip_address] = parsed.host_address
        attrs[A.tcpip_hostname] = parsed.host_address
        attrs[A.tcpip_nodelay] = constants.VI_TRUE
        attrs[A.tcpip_keepalive] = constants.VI_FALSE
    if isinstance(parsed, rname.TCPIPSocket):
        attrs[A.tcpip_port] = int(parsed.port)
    if isinstance(parsed, rname.TCPIPInstr):
        attrs[A.tcpip_device_name] = parsed.lan_device_name
    if isinstance(parsed, rname.GPIBInstr):
        attrs[A.gpib_primary_address] = int(parsed.primary_address)
        secondary = parsed.secondary_address
        attrs[A.gpib_secondary_address] = (
            int(secondary) if secondary not in (None, "") else constants.VI_NO_SEC_ADDR
        )
    if isinstance(parsed, rname.USBInstr):
        attrs[A.manufacturer_id] = int(parsed.manufacturer_id, 0)
        attrs[A.model_code] = int(parsed.model_code, 0)
        attrs[A.usb_serial_number] = parsed.serial_number
        attrs[A.usb_interface_number] = int(parsed.usb_interface_number or 0)
    return attrs


def check_attribute_value(attribute: A, value: Any) -> bool:
    """Whether `value` is a legal state for a settable attribute we interpret ourselves."""
    if attribute == A.timeout_value:
        return isinstance(value, int) and 0 <= value <= constants.VI_TMO_INFINITE
    if attribute == A.termchar:
        return isinstance(value, int) and 0 <= value <= 0xFF
    return True
