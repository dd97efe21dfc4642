"""The chip as the bench sees it: the chip file's circuit plus what the wiring hangs on it.

The wiring adds real loads (sim_backend/chip/loads.py): each pulse input's series resistor
from its port to ground, each readout amplifier's input impedance on its node. The chip keeps
its state between simulations, so a wire latched by one bias step is still latched at the next.

A latched wire (an injected fault: a wire stuck resistive, as a wire with a local defect or
insufficient shunting does) is simulated as its normal-state resistance until every bias
current is removed, when it recovers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np

from sim_backend.bench.station import EmulatedStation
from sim_backend.chip.build import ChipFile, build_chip
from sim_backend.chip.loads import port_node, wiring_loads  # noqa: F401  (port_node: the bench's callers)
from sim_backend.physics.circuit import Circuit, Nanowire, Resistor
from sim_backend.physics.dc import dc_state
from sim_backend.physics.nanowire import normal_resistance_ohm, switching_current_a
from sim_backend.physics.results import CircuitState, TransientResult
from sim_backend.physics.transient import simulate
from sim_backend.physics.waveform import PiecewiseLinear

#: A run that ended superconducting is at rest (a DC state) once its node voltages would move
#: no branch current by more than this before they decay: V/R through the smallest resistance,
#: a fiftieth of a default wire's 50 nA switching spread.
REST_CURRENT_A = 1e-9

#: A bias change not otherwise announced is applied as a ramp of this duration (the solver
#: integrates dI/dt); the world settles bias changes with a slower ramp before readings.
BIAS_STEP_RISE_S = 1e-9


@dataclass(frozen=True)
class DcReading:
    """What an SMU reads from the chip over a stretch of simulated time: each node's mean voltage."""

    node_mean_v: Mapping[str, float]

    @classmethod
    def of(cls, result: TransientResult) -> DcReading:
        return cls({node: float(np.mean(v)) for node, v in result.node_voltage_v.items()})


@dataclass
class ChipUnderTest:
    definition: ChipFile
    circuit: Circuit                          # chip + wiring loads
    port_sources: dict[str, str]              # chip port -> source element name
    state: CircuitState | None = None
    bias_a: dict[str, float] | None = None    # DC port currents the state was reached with
    last_result: TransientResult | None = None
    latched: frozenset[str] = frozenset()     # nanowires held resistive until the bias is removed
    settled: bool = False                     # the last run ended with no switching: a static state
    #: The DC input levels the state has settled under (World.dc_inputs); None: not settled under one.
    settled_dc_inputs: tuple | None = None
    #: The last stretch of a bias settle and the state it ended in (World sets it): while that is
    #: still the chip's state, the next SMU reading takes it instead of simulating its own.
    dc_reading: tuple[CircuitState | None, DcReading] | None = None
    #: The state a settle left on a limit cycle and the drive it is the cycle of (World sets it):
    #: while that is still the chip's state, where a new settle leads depends on the drives alone.
    cycle: tuple[CircuitState, tuple] | None = None

    @classmethod
    def from_station(cls, station: EmulatedStation) -> ChipUnderTest:
        definition = build_chip(station.chip)
        loads = wiring_loads(definition, station.pulse_inputs, station.readouts)
        return cls(definition, Circuit(definition.circuit.elements + loads), dict(definition.ports))

    def latch(self, element: str) -> None:
        """Hold a nanowire resistive (at its normal resistance) until the bias is removed."""
        wire = self.circuit.element(element)
        if not isinstance(wire, Nanowire):
            raise ValueError(f"{element!r} is a {type(wire).__name__}, not a nanowire")
        self.latched = self.latched | {element}
        self.state, self.settled = None, False   # the circuit changes: restart from its DC point
        self.settled_dc_inputs = None

    def release_latch_if_unbiased(self, bias_a: Mapping[str, float]) -> None:
        """A latched wire recovers once its bias is gone (now and at the last run)."""
        if self.latched and not any(bias_a.values()) and not any((self.bias_a or {}).values()):
            self.latched, self.state, self.settled = frozenset(), None, False
            self.settled_dc_inputs = None

    def _circuit_now(self) -> Circuit:
        if not self.latched:
            return self.circuit
        return Circuit(tuple(
            Resistor(e.name, e.node_pos, e.node_neg, normal_resistance_ohm(e.params))
            if e.name in self.latched else e for e in self.circuit.elements))

    def static_bias_change(self, bias_a: Mapping[str, float], *, temperature_k: float,
                           rng: np.random.Generator) -> bool:
        """Apply a bias change without a transient when nothing can switch; False if it might.

        With every wire superconducting, nothing latched and the input idle, a slow bias change
        only redistributes DC current by inductance, every loop keeping the flux it holds. If no
        wire then reaches its drawn switching threshold, the chip settles with no voltage in
        that DC state.

        A wire whose current falls starts a new switching trial: its next climb is independent
        of the one it survived (switching is an escape, not a fixed threshold), so its threshold
        is drawn again, given only that it has not switched at its present current. Without
        that, a high draw would hold through every later climb until one went past it.
        """
        state = self.state
        if state is None or not self.settled or self.latched or any(state.resistive.values()):
            return False
        ports = self.port_sources
        # The temperature enters only through the nonlinear inductance (1 mK: 0.01 % of I_sw):
        # rounded, the levels a sweep revisits reuse their DC solution of the resistive network.
        currents = dc_state(self.circuit, temperature_k=round(temperature_k, 3), keeping_flux_of=state,
                            source_values={ports[p]: bias_a.get(p, 0.0) for p in ports}).branch_current_a
        draws = dict(state.threshold_z)
        for wire in self.circuit.elements:
            if not isinstance(wire, Nanowire):
                continue
            isw_a = switching_current_a(wire.params, temperature_k)
            if isw_a <= 0.0:
                return False                                 # above Tc: a resistor, simulate it
            z = draws.get(wire.name, math.nan)
            now_a, sigma_a = abs(currents[wire.name]), wire.params.sigma_isw_a
            if math.isnan(z):
                z = draws[wire.name] = float(rng.standard_normal())
            elif now_a < abs(state.branch_current_a[wire.name]):
                z = draws[wire.name] = _surviving_draw(wire, now_a, isw_a, rng, z)
            if now_a >= isw_a + sigma_a * z:
                # It would switch: simulate it, with the thresholds drawn here (a new draw in
                # the simulation would make this check a second, independent trial).
                self.state = replace(state, threshold_z=draws)
                return False
        self.state = replace(state, branch_current_a=currents, threshold_z=draws)
        self.bias_a = dict(bias_a)
        return True

    def run(
        self, *, start_s: float, stop_s: float, bias_a: Mapping[str, float],
        inputs_a: Mapping[str, PiecewiseLinear], sample_times_s: np.ndarray,
        temperature_k: float, rng: np.random.Generator, bias_ramp_s: float = BIAS_STEP_RISE_S,
        node_voltages_only: bool = True,
    ) -> TransientResult:
        """Simulate [start_s, stop_s] (window-relative times) from the chip's last state.

        `bias_a` holds DC port currents; a change from the last run ramps over
        BIAS_STEP_RISE_S from start_s. `inputs_a` are time-dependent port currents. The result's
        traces are the node voltages the instruments see, unless `node_voltages_only` is False.
        """
        previous = self.bias_a or {}
        self.release_latch_if_unbiased(bias_a)
        circuit = self._circuit_now()
        drives: dict[str, PiecewiseLinear] = {}
        for port, current_a in bias_a.items():
            old_a = previous.get(port, 0.0)
            if old_a == current_a:
                drives[self.port_sources[port]] = PiecewiseLinear.constant(current_a)
            else:
                drives[self.port_sources[port]] = PiecewiseLinear(
                    np.array([start_s, start_s + bias_ramp_s]), np.array([old_a, current_a]))
        for port, waveform in inputs_a.items():
            drives[self.port_sources[port]] = waveform
        for source in circuit.sources:            # undriven ports carry nothing
            drives.setdefault(source.name, PiecewiseLinear.constant(0.0))
        # The saved state ends the previous window; this window's clock starts at zero.
        initial = None if self.state is None else replace(self.state, time_s=0.0)
        if initial is None:
            initial = dc_state(circuit, temperature_k=temperature_k,
                               source_values={self.port_sources[p]: previous.get(p, 0.0) for p in self.port_sources})
        result = simulate(
            circuit, stop_s - start_s,
            drives={name: _shifted(w, -start_s) for name, w in drives.items()},
            sample_times_s=np.asarray(sample_times_s) - start_s,
            temperature_k=temperature_k, rng=rng, initial=initial,
            node_voltages_only=node_voltages_only,
        )
        self.state = result.final_state
        # An oscillating chip has no static state, nor has a latched one (a resistor carries a voltage).
        self.settled = not result.events and not self.latched
        self.bias_a = dict(bias_a)
        self.release_latch_if_unbiased(bias_a)    # a run that ends unbiased frees a latched wire
        # Report on the caller's clock: times relative to the window's origin, like the drives
        # (a settle's window starts at its origin: nothing to shift).
        if start_s != 0.0:
            result = replace(result, time_s=result.time_s + start_s,
                             events=tuple(e._replace(time_s=e.time_s + start_s) for e in result.events))
        self.last_result = result
        return result

    def ended_at_rest(self, result: TransientResult) -> bool:
        """`result` (this chip's last run) ended superconducting, nothing latched, its currents at
        rest: what a superconducting L–R network still has to move after time t is the flux its
        node voltages carry, V·L/R over L, so each node's V over the smallest resistance bounds it."""
        if self.latched or any(result.final_state.resistive.values()):
            return False
        end_v = max((abs(float(v[-1])) for v in result.node_voltage_v.values()), default=0.0)
        return result.time_s.size > 0 and end_v / self._smallest_resistance_ohm <= REST_CURRENT_A

    @functools.cached_property
    def _smallest_resistance_ohm(self) -> float:
        return min((e.resistance_ohm for e in self.circuit.elements if isinstance(e, Resistor)), default=math.inf)

    def continue_from(self, result: TransientResult, *, bias_a: Mapping[str, float], latched: frozenset[str],
                      temperature_k: float, rng: np.random.Generator) -> None:
        """Take the end of a settle simulated before from an equivalent state (steady_outcomes)
        as this chip's: its state, its bias, its latched wires. Each superconducting wire's
        threshold is drawn afresh, given that it has not switched at its present current: the
        kept draw would make every reuse of the outcome one and the same switching trial."""
        state = result.final_state
        draws = dict(state.threshold_z)
        for wire in self.circuit.elements:
            if isinstance(wire, Nanowire) and not state.resistive.get(wire.name, False) and wire.name in draws:
                isw_a = switching_current_a(wire.params, temperature_k)
                draws[wire.name] = _surviving_draw(wire, abs(state.branch_current_a[wire.name]), isw_a, rng,
                                                   draws[wire.name])
        self.state, self.bias_a, self.latched = replace(state, threshold_z=draws), dict(bias_a), latched
        self.settled = not result.events and not latched
        self.last_result = result

    def on_cycle_of(self) -> tuple | None:
        """The drive whose limit cycle the present state is on (World.settle), None if it is not."""
        return self.cycle[1] if self.cycle is not None and self.cycle[0] is self.state else None

    def keep_dc_reading(self, result: TransientResult) -> None:
        """Keep the mean node voltages over `result` as the next SMU reading of the present state."""
        self.dc_reading = self.state, DcReading.of(result)

    def take_dc_reading(self) -> DcReading | None:
        """The kept reading if nothing has changed the state since, once; else None."""
        kept, self.dc_reading = self.dc_reading, None
        return kept[1] if kept is not None and kept[0] is self.state else None

    #: What a run changes: the state it continues from and what is known about it.
    _RUN_STATE = ("state", "bias_a", "latched", "last_result", "settled", "settled_dc_inputs",
                  "dc_reading", "cycle")

    def snapshot(self) -> tuple:
        """Everything a run changes, for `restore` (a scope search simulates a stretch twice)."""
        return tuple(getattr(self, name) for name in self._RUN_STATE)

    def restore(self, snapshot: tuple) -> None:
        for name, value in zip(self._RUN_STATE, snapshot, strict=True):
            setattr(self, name, value)

    def reset(self) -> None:
        """Forget the state: the next run starts from the superconducting DC operating point."""
        self.state, self.settled_dc_inputs = None, None


_STANDARD_NORMAL = NormalDist()


def _surviving_draw(wire: Nanowire, current_a: float, isw_a: float, rng: np.random.Generator, z: float) -> float:
    """A wire's threshold draw for a new switching trial, given that it has not switched at
    current_a (z unchanged for a wire without spread, or above its critical temperature)."""
    if wire.params.sigma_isw_a <= 0.0 or isw_a <= 0.0 or math.isnan(z):
        return z
    return _normal_above((current_a - isw_a) / wire.params.sigma_isw_a, rng)


def _normal_above(floor: float, rng: np.random.Generator) -> float:
    """A standard-normal draw given that it is above `floor` (inverse CDF of the truncated law)."""
    below = min(_STANDARD_NORMAL.cdf(floor), 1.0 - 1e-12)
    return _STANDARD_NORMAL.inv_cdf(below + float(rng.random()) * (1.0 - below))


def _shifted(waveform: PiecewiseLinear, shift_s: float) -> PiecewiseLinear:
    return waveform if shift_s == 0.0 else PiecewiseLinear(waveform.times_s + shift_s, waveform.values)
