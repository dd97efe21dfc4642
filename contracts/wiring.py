"""The station's signal chain: every conversion between chip quantities and instrument units.

Built once per station (`wiring_of`) from its `wiring:` section. A pulse input turns generator
volts into a current into a chip port (attenuation, then a series resistor); a scope channel sees
a chip node, or the generator's output (`monitor: pulse_input`), through an amplifier chain; a
bias line drops volts between the source's terminals and the chip port. Nothing else on the lab
side converts: the executor asks this object for generator volts, scope ranges and trigger
levels, and for chip volts and amperes from what the scope recorded; the drivers are given the
generator envelope in volts that it derives from the station's chip-side limits.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

from contracts.envelope import DerivedLimit, Envelope
from contracts.files.station import BiasLine, PulseInput, Readout, Station, StationError

#: The scope channel that watches the generator output names this wiring path (station file).
INPUT_MONITOR = "pulse_input"


@dataclass(frozen=True)
class PulsePath:
    """A generator channel driving a chip port: attenuation, then a series resistor into the port
    (the chip's own ~mV is negligible against the resistor's drop)."""
    instrument: str
    channel: int
    chip_port: str
    #: Chip current per volt at the generator output (its levels into the matched 50 ohm line).
    amperes_per_volt: float

    @classmethod
    def from_station(cls, wire: PulseInput) -> PulsePath:
        return cls(wire.instrument, wire.channel, wire.chip_port, wire.amperes_per_volt)

    def sharing_with(self, paths) -> list[PulsePath]:
        """The paths (this one included) fed by the same generator channel, through a splitter."""
        return [p for p in paths if (p.instrument, p.channel) == (self.instrument, self.channel)]

    def generator_v(self, chip_current_a: float) -> float:
        """Generator volts that drive `chip_current_a` into the port."""
        return chip_current_a / self.amperes_per_volt

    def chip_current_a(self, generator_v):
        """Chip amperes for generator volts (a number or an array)."""
        return generator_v * self.amperes_per_volt

    def generator_envelope(self, envelope: Envelope) -> Envelope:
        """The generator's envelope in its own units, from the station's `envelope` for it.

        `pulse_amplitude_max_v` is the least of `amplitude_max_v` (at the generator) and
        `pulse_current_max_a` (at the chip) carried back through this path; `pulse_width_max_s`
        is the same on both sides. Refusals name the volts, the chip current and the limits."""
        bounds: list[tuple[float, str]] = []
        own_v = envelope.limit("amplitude_max_v")
        if own_v is not None:
            bounds.append((own_v, f"amplitude_max_v = {own_v:.6g} V at the generator"))
        chip_a = envelope.limit("pulse_current_max_a")
        if chip_a is not None:
            chip_v = self.generator_v(chip_a)
            bounds.append((chip_v, (f"pulse_current_max_a = {chip_a:.6g} A at the chip, {chip_v:.6g} V through "
                                    f"{self.amperes_per_volt:.6g} A/V of wiring")))
        limits, derived = {}, {}
        if bounds:
            limits["pulse_amplitude_max_v"] = min(bound_v for bound_v, _ in bounds)
            sources = " and ".join(text for _, text in bounds)
            derived["pulse_amplitude_max_v"] = DerivedLimit(
                sources=sources if len(bounds) == 1 else f"the least of {sources}",
                at_chip=self.chip_current_a, chip_unit="A")
        width_s = envelope.limit("pulse_width_max_s")
        if width_s is not None:
            limits["pulse_width_max_s"] = width_s
        return Envelope(envelope.role, limits, envelope.where, derived)


@dataclass(frozen=True)
class ReadoutPath:
    """A scope channel watching a chip node, or a monitored output, through an amplifier chain."""
    scope_channel: int
    chip_node: str | None
    monitor: str | None
    #: Volts at the source (the chip node, the monitored output) per volt at the scope input.
    source_volts_per_scope_volt: float

    @classmethod
    def from_station(cls, readout: Readout) -> ReadoutPath:
        return cls(readout.scope_channel, readout.chip_node, readout.monitor, readout.volts_at_source_per_volt)

    def scope_v(self, source_v: float) -> float:
        """Scope volts for volts at the source (a range, a trigger level)."""
        return source_v / self.source_volts_per_scope_volt

    def source_v(self, scope_v):
        """Volts at the source for scope volts (a number or an array)."""
        return scope_v * self.source_volts_per_scope_volt


@dataclass(frozen=True)
class BiasPath:
    """A bias source channel reaching a chip port through the cryostat's lines."""
    instrument: str
    channel: int
    chip_port: str
    line_resistance_ohm: float

    @classmethod
    def from_station(cls, line: BiasLine) -> BiasPath:
        return cls(line.instrument, line.channel, line.chip_port, line.line_resistance_ohm)

    def port_v(self, source_v, current_a):
        """Volts at the chip port for volts at the source's terminals while it drives `current_a`
        (numbers or arrays): the lines' drop taken off."""
        return source_v - current_a * self.line_resistance_ohm


class Wiring:
    """One station's signal chain; the only place chip quantities become instrument units."""

    def __init__(self, station: Station) -> None:
        self._where = station.path
        self.pulse_inputs = tuple(PulsePath.from_station(w) for w in station.pulse_inputs)
        self.bias_lines = tuple(BiasPath.from_station(b) for b in station.bias_lines)
        self.readouts = tuple(ReadoutPath.from_station(r) for r in station.readouts)
        #: Per pulse generator (station file key): its envelope in volts (see `generator_envelope`).
        self.generator_envelopes = {
            name: self._generator_envelope(name, config.envelope)
            for name, config in station.instruments.items() if config.role == "pulse_generator"}

    # --- the paths ---------------------------------------------------------------------------
    @property
    def input(self) -> PulsePath:
        """The pulse input the procedures drive (and the scope monitors)."""
        if not self.pulse_inputs:
            raise StationError(f"{self._where}: wiring has no pulse input")
        return self.pulse_inputs[0]

    def pulse_path(self, instrument: str) -> PulsePath | None:
        """The first path `instrument` drives (the channel its driver is told to use), if any."""
        return next((path for path in self.pulse_inputs if path.instrument == instrument), None)

    def readout(self, *, chip_node: str | None = None, monitor: str | None = None) -> ReadoutPath:
        for path in self.readouts:
            if (chip_node and path.chip_node == chip_node) or (monitor and path.monitor == monitor):
                return path
        raise StationError(f"{self._where}: wiring.readout has no channel for {chip_node or monitor!r}")

    @property
    def monitor(self) -> ReadoutPath:
        """The scope channel watching the pulse input's generator output."""
        return self.readout(monitor=INPUT_MONITOR)

    def scope_channel(self, chip_node: str) -> int:
        return self.readout(chip_node=chip_node).scope_channel

    # --- chip quantities to instrument units -------------------------------------------------
    def generator_v(self, current_a: float) -> float:
        """Generator volts on the pulse input for `current_a` into the chip."""
        return self.input.generator_v(current_a)

    def node_scope_v(self, chip_node: str, node_v: float) -> float:
        """Scope volts on `chip_node`'s channel for `node_v` at the node (a range, a trigger level)."""
        return self.readout(chip_node=chip_node).scope_v(node_v)

    def monitor_scope_v(self, current_a: float) -> float:
        """Scope volts on the input monitor while the pulse input drives `current_a` into the chip."""
        return self.monitor.scope_v(self.generator_v(current_a))

    # --- instrument readings to chip quantities ----------------------------------------------
    def node_v(self, chip_node: str, scope_v):
        """Volts at `chip_node` for what its scope channel recorded (a number or an array)."""
        return self.readout(chip_node=chip_node).source_v(scope_v)

    def input_current_a(self, monitor_scope_v):
        """Amperes into the chip from what the input monitor recorded (a number or an array)."""
        return self.input.chip_current_a(self.monitor.source_v(monitor_scope_v))

    def bias_port_v(self, source_v, current_a, chip_port: str | None = None):
        """Volts at the bias port (None: the primary one; else `chip_port`) for its source's
        reading while it drives `current_a`."""
        lines = [line for line in self.bias_lines if chip_port is None or line.chip_port == chip_port]
        return lines[0].port_v(source_v, current_a) if lines else source_v

    # --- envelopes ---------------------------------------------------------------------------
    def _generator_envelope(self, name: str, envelope: Envelope) -> Envelope:
        path = self.pulse_path(name)
        # An unwired generator keeps the station's chip-side limits, which its driver cannot
        # check in volts and so refuses every level (the station check refuses such a file first).
        if path is None:
            return envelope
        # A channel split to several ports: the volts that keep every port inside its limit.
        candidates = [p.generator_envelope(envelope) for p in path.sharing_with(self.pulse_inputs)]
        return min(candidates, key=lambda e: e.limit("pulse_amplitude_max_v") or math.inf)

    def chip_currents_a(self, generator_v: float) -> dict[str, float]:
        """Current into every chip port the primary input's generator channel feeds, for
        `generator_v` at its output (the primary port and any the channel is split to)."""
        return {p.chip_port: p.chip_current_a(generator_v) for p in self.input.sharing_with(self.pulse_inputs)}

    def generator_envelope(self, instrument: str) -> Envelope:
        """The envelope `instrument`'s driver is held to, in generator volts."""
        return self.generator_envelopes[instrument]


#: Wiring already built, by the id of its station (dropped with the station).
_BUILT: dict[int, tuple[weakref.ref, Wiring]] = {}


def wiring_of(station: Station) -> Wiring:
    """The station's wiring, built on first use and kept for the station's lifetime."""
    key = id(station)
    built = _BUILT.get(key)
    if built is not None and built[0]() is station:
        return built[1]
    wiring = Wiring(station)
    _BUILT[key] = (weakref.ref(station, lambda _, key=key: _BUILT.pop(key, None)), wiring)
    return wiring
