"""What a station's wiring hangs on a chip: the loads its pulse inputs and readouts put on the
chip's nodes. The emulated bench simulates the chip with them (sim_backend/bench/chip.py), and a
design sweep may too (`station:` in its spec), so both see the same circuit.

Each pulse input reaches its port through a series resistor (a Norton source: current V/R into
the port, R from the port to ground); each readout amplifier loads its node with its input
impedance.
"""

from __future__ import annotations

from collections.abc import Iterable

from contracts.files.station import PulseInput, Readout
from sim_backend.chip.build import ChipFile
from sim_backend.physics.circuit import Resistor


def port_node(definition: ChipFile, port: str) -> str:
    """The chip node a port's source pushes its current into."""
    try:
        source = definition.circuit.element(definition.ports[port])
    except KeyError:
        raise ValueError(f"{definition.path}: the chip has no port {port!r} "
                         f"(ports: {', '.join(definition.ports)})") from None
    return source.node_pos


def wiring_loads(definition: ChipFile, pulse_inputs: Iterable[PulseInput],
                 readouts: Iterable[Readout]) -> tuple[Resistor, ...]:
    """The resistors the wiring adds from chip nodes to ground."""
    loads = [Resistor(f"wiring_input_{index}", port_node(definition, wire.chip_port), "0",
                      wire.series_resistance_ohm) for index, wire in enumerate(pulse_inputs)]
    loads += [Resistor(f"wiring_readout_ch{channel.scope_channel}", channel.chip_node, "0",
                       channel.input_impedance_ohm)
              for channel in readouts if channel.chip_node is not None and channel.input_impedance_ohm is not None]
    return tuple(loads)
