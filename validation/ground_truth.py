"""The emulator's true values of the figures the procedures measure, from its own physics.

The chip is taken as the emulated bench sees it (`sim_backend.bench.chip.ChipUnderTest`: the
chip file's circuit plus the wiring's loads), with every wire's per-attempt switching spread
set to zero and no scope noise: noise-free transients of the emulator's solver at the
conditions of a run (stage temperature, DC bias, pulse width and edge, amplitudes).

Pulses are built as the emulated generator builds them: a 10-90 % edge t is a linear ramp of
t / 0.8, the width is measured at half height.

Which chip state a figure is true for. After a spike and the control wire's reset some
0.25-0.3 µA stays circulating in the loop (the main wire carries 8.36 instead of 8.51 µA on the
default neuron at 3.17 K with the bench's wiring), which raises the 2 ns threshold by ~2 %.
`state="post_spike"` is the state one spike leaves, `state="fresh"` the DC state.

A spike does not leave one state: each leaves a little more current circulating until a spike
makes the control wire switch twice and resets it, a sawtooth of some 10-17 spikes along which
the 2 ns threshold of the default neuron at 3.17 K runs from 19 to 28 uA (fresh: 24.3 uA).
A measurement firing many pulses samples that cycle; the truths of thresholds and refractory
periods are therefore medians over the states of CYCLE_SPIKES successive spikes (the amplitude,
or spacing, that fires from half of them), the energy per spike the mean over those spikes,
and the fresh and one-spike values are reported beside them.

The I-V sweep's port switching current: the bias port turns resistive (a DC voltage) near
where both wires carry their switching current, I_sw,m + I_sw,c (the first wire's switch only
moves current into the loop as trapped flux, at 0 V). The flux each switch transfers comes in
finite amounts, so the port switches some 20-80 nA below that sum, at a level that depends on
the flux the previous sweeps left; the truth is the mean level of noise-free sweeps cycled as
iv_sweep cycles them (`port_sweep_switching_currents_a`, the emulated source meter's own way
of applying a level).

Truths are deterministic; `TruthCache` keeps them in a JSON file keyed by the conditions.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from procedures.analysis.strength_duration import fit_weiss
from sim_backend.bench.chip import ChipUnderTest
from sim_backend.bench.station import load_emulated_station
from sim_backend.bench.temperature_controller import initial_temperature_k
from sim_backend.bench.world import DC_INPUT_SETTLE_S
from sim_backend.physics.circuit import Circuit, Nanowire
from sim_backend.physics.dc import dc_state
from sim_backend.physics.nanowire import switching_current_a
from sim_backend.physics.results import CircuitState, TransientResult
from sim_backend.physics.transient import simulate
from sim_backend.physics.waveform import PiecewiseLinear
from sim_backend.scpi.models._lakeshore_common import stage_for

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATION = ROOT / "stations" / "emulated.yaml"

#: The generator's 10-90 % edge is this fraction of its linear ramp.
EDGE_OF_RAMP = 0.8
#: Where a pulse's leading edge starts in the truth transients.
START_S = 1e-9
#: Time simulated after a pulse's trailing edge for a spike to come (the procedures' spike window).
SPIKE_AFTER_S = 10e-9
#: Relaxation simulated after the spike that prepares the post-spike state.
RELAX_S = 300e-9
#: The main (spiking) wire and the control wire of the default neuron.
MAIN_WIRE = "wm"
States = ("post_spike", "fresh")


def deterministic(circuit: Circuit) -> Circuit:
    """The circuit with every wire's per-attempt switching spread set to zero."""
    return Circuit(tuple(replace(e, params=replace(e.params, sigma_isw_a=0.0)) if isinstance(e, Nanowire) else e
                         for e in circuit.elements), circuit.nodes)


def ramp_s(edge_s: float) -> float:
    """The linear ramp of a generator edge whose 10-90 % time is edge_s."""
    return edge_s / EDGE_OF_RAMP


def pulse_train(amplitude_a: float, width_s: float, ramp: float, starts_s: Sequence[float]) -> PiecewiseLinear:
    """Trapezoids of `amplitude_a`, width at half height `width_s`, linear ramps `ramp` (s)."""
    times, values = [0.0], [0.0]
    for start in starts_s:
        top_s = max(width_s - ramp, 0.0)
        corners = [start, start + ramp, start + ramp + top_s, start + 2 * ramp + top_s]
        if corners[0] <= times[-1]:     # touching the previous pulse: its last corner is this one's first
            corners, levels = corners[1:], [amplitude_a, amplitude_a, 0.0]
        else:
            levels = [0.0, amplitude_a, amplitude_a, 0.0]
        times += corners
        values += levels
    return PiecewiseLinear(np.asarray(times), np.asarray(values))


def station_temperature_k(station_path: str | Path = DEFAULT_STATION) -> float:
    """The stage temperature an emulated run sees without a cooldown: the cryostat's starting
    temperature (its `initial_temperature_k`, by default the stage's no-load equilibrium, where
    it stays with the heater off); the chip file's temperature when the station has no cryostat."""
    station = load_emulated_station(station_path)
    for instrument in station.instruments:
        if instrument.role == "temperature_controller":
            settings = dict(instrument.settings)
            return initial_temperature_k(settings, stage_for(settings, "4k_probe_station"))
    return float(ChipUnderTest.from_station(station).definition.temperature_k or 2.0)


@dataclass
class TruthChip:
    """The noise-free chip at a stage temperature and DC bias; `wiring=False` drops the bench's
    loads (the bare chip file, as its notes were computed)."""
    circuit: Circuit
    ports: Mapping[str, str]           # chip port -> source element
    temperature_k: float
    bias_a: float
    spike_ramp_s: float = ramp_s(1e-9)  # the edge of the pulse that prepares the post-spike state
    #: Solver settings other than the defaults (simulate's max_step_s, rtol, atol_*): for checking
    #: that a truth does not depend on them.
    solver: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_station(cls, station_path: str | Path = DEFAULT_STATION, *, bias_a: float | None = None,
                     temperature_k: float | None = None, wiring: bool = True,
                     solver: Mapping[str, float] | None = None) -> TruthChip:
        station = load_emulated_station(station_path)
        chip = ChipUnderTest.from_station(station)
        circuit = chip.circuit if wiring else chip.definition.circuit
        ports = dict(chip.port_sources)
        if bias_a is None:   # the chip file's own bias current
            bias_a = float(circuit.element(ports["bias"]).current_a)
        if temperature_k is None:
            temperature_k = station_temperature_k(station_path)
        return cls(deterministic(circuit), ports, float(temperature_k), float(bias_a), solver=dict(solver or {}))

    # --- states and transients ---------------------------------------------------------------
    @cached_property
    def fresh_state(self) -> CircuitState:
        """Superconducting DC operating point at the bias, no trapped flux."""
        return dc_state(self.circuit, temperature_k=self.temperature_k,
                        source_values={self.ports["bias"]: self.bias_a, self.ports["input"]: 0.0})

    @cached_property
    def post_spike_state(self) -> CircuitState:
        """The state one spike leaves: a 2 ns pulse at 1.2x the fresh threshold, then RELAX_S."""
        amplitude_a = 1.2 * self.threshold_a(2e-9, self.spike_ramp_s, state="fresh")
        stop_s = START_S + 2e-9 + 2 * self.spike_ramp_s + RELAX_S
        result = self.run(pulse_train(amplitude_a, 2e-9, self.spike_ramp_s, [START_S]), stop_s, "fresh")
        if len(result.switch_times_s(MAIN_WIRE)) != 1:
            raise RuntimeError(f"the preparing pulse ({amplitude_a:.4g} A) did not fire exactly once")
        return result.final_state

    def state(self, which: str | CircuitState) -> CircuitState:
        if isinstance(which, CircuitState):
            return which
        if which not in States:
            raise ValueError(f"state must be one of {States}, got {which!r}")
        return self.post_spike_state if which == "post_spike" else self.fresh_state

    def spike_states(self, amplitude_a: float, width_s: float, ramp: float, count: int,
                     state: str | CircuitState = "fresh") -> list[CircuitState]:
        """The states left by `count` successive spikes at `amplitude_a`, each relaxed RELAX_S.

        They do not repeat spike by spike: each spike leaves a little more current circulating
        in the loop (the main wire's DC current falls by ~0.25-0.3 uA a spike on the default
        neuron), until a spike makes the control wire switch twice and resets it: a sawtooth of
        some 10-17 spikes. A measurement firing many pulses samples that whole cycle."""
        states, current = [], self.state(state)
        stop_s = START_S + width_s + 2 * ramp + RELAX_S
        for _ in range(count):
            result = self.run(pulse_train(amplitude_a, width_s, ramp, [START_S]), stop_s, current)
            current = result.final_state
            states.append(current)
        return states

    def run(self, drive: PiecewiseLinear, stop_s: float, state: str | CircuitState = "post_spike", *,
            sample_times_s: np.ndarray | None = None) -> TransientResult:
        """A transient with `drive` into the input port, the bias constant, from `state`."""
        return simulate(self.circuit, stop_s,
                        drives={self.ports["bias"]: PiecewiseLinear.constant(self.bias_a),
                                self.ports["input"]: drive},
                        sample_times_s=np.array([stop_s]) if sample_times_s is None else sample_times_s,
                        temperature_k=self.temperature_k, rng=np.random.default_rng(0),
                        initial=replace(self.state(state), time_s=0.0), **self.solver)

    def main_switches(self, drive: PiecewiseLinear, stop_s: float, state: str | CircuitState = "post_spike",
                      after_s: float = 0.0) -> int:
        return int(np.sum(self.run(drive, stop_s, state).switch_times_s(MAIN_WIRE) >= after_s))

    # --- (a) the I-V sweep's port switching current --------------------------------------------
    def wire_switching_current_a(self, wire: str) -> float:
        return switching_current_a(self.circuit.element(wire).params, self.temperature_k)

    def port_switching_current_a(self) -> float:
        """Bias-port current at which the port turns resistive: every wire at its I_sw."""
        return float(sum(switching_current_a(e.params, self.temperature_k)
                         for e in self.circuit.elements if isinstance(e, Nanowire)))

    def first_wire_port_current_a(self) -> float:
        """Bias-port current at which the first wire reaches its I_sw in the DC solution (no
        trapped flux): where the first (voltage-free) switch happens, not what iv_sweep measures."""
        def margin(port_a: float) -> float:
            currents = dc_state(self.circuit, temperature_k=self.temperature_k,
                                source_values={self.ports["bias"]: port_a, self.ports["input"]: 0.0}).branch_current_a
            return max(abs(currents[e.name]) / switching_current_a(e.params, self.temperature_k)
                       for e in self.circuit.elements if isinstance(e, Nanowire)) - 1.0
        return bisect(margin, 0.0, 2.0 * self.port_switching_current_a(), 1e-11)

    def port_sweep_switching_currents_a(self, reset_a: float, step_a: float = 2e-9, cycles: int = 12) -> list[float]:
        """Switching levels of noise-free bias sweeps applied as the emulated source meter
        applies them (ChipUnderTest: a DC redistribution while nothing can switch, else a 50 ns
        ramp simulated for 150 ns, then a 20 ns reading): steps up to reset_a, then
        `step_a` steps up to the first level that reads a voltage (20 nA steps from 0.9x the
        first wire's switch); then `cycles` times down to
        reset_a and up again, as iv_sweep's fast sweeps do (through zero bias where the port has
        not retrapped at reset_a). Each switch leaves flux in the
        loop, so the levels are not all alike: iv_sweep's mean estimates their average."""
        chip = ChipUnderTest(None, self.circuit, dict(self.ports))
        rng = np.random.default_rng(0)
        node = chip.circuit.element(self.ports["bias"]).node_pos
        top_a = 1.2 * self.port_switching_current_a()

        def resistive_at(level_a: float) -> bool:
            bias = {"bias": float(level_a)}
            if not chip.static_bias_change(bias, temperature_k=self.temperature_k, rng=rng):
                chip.run(start_s=0.0, stop_s=150e-9, bias_a=bias, inputs_a={}, sample_times_s=np.array([150e-9]),
                         temperature_k=self.temperature_k, rng=rng, bias_ramp_s=50e-9)
            if chip.settled:
                return False
            reading = chip.run(start_s=0.0, stop_s=20e-9, bias_a=bias, inputs_a={},
                               sample_times_s=np.linspace(0.0, 20e-9, 101), temperature_k=self.temperature_k,
                               rng=rng)
            return abs(float(np.mean(reading.node_voltage_v[node]))) > 1e-6

        def up_from_zero() -> None:   # coarse while nothing can switch, then as a 20 nA-step ramp
            first_a = 0.9 * self.first_wire_port_current_a()
            for level_a in np.concatenate([np.arange(0.0, first_a, 0.5e-6), np.arange(first_a, reset_a, 20e-9)]):
                resistive_at(level_a)

        up_from_zero()
        levels = []
        for _ in range(cycles + 1):
            if resistive_at(reset_a):     # not retrapped: through zero bias and back, as iv_sweep does
                up_from_zero()
                if resistive_at(reset_a):
                    raise RuntimeError(f"the port does not retrap at {reset_a:.6g} A")
            for level_a in reset_a + step_a * np.arange(1, int((top_a - reset_a) / step_a) + 1):
                if resistive_at(level_a):
                    levels.append(float(level_a))
                    break
            else:
                levels.append(math.nan)
        return levels

    # --- (b) threshold at a pulse width ----------------------------------------------------------
    def threshold_a(self, width_s: float, ramp: float, state: str | CircuitState = "post_spike", *, rel_tol: float = 1e-5,
                    high_a: float = 150e-6) -> float:
        """Smallest input amplitude at which the main wire switches (bisection)."""
        stop_s = START_S + width_s + 2 * ramp + SPIKE_AFTER_S

        def fires(amplitude_a: float) -> float:
            return 1.0 if self.main_switches(pulse_train(amplitude_a, width_s, ramp, [START_S]), stop_s, state) else -1.0
        return bisect(fires, 0.0, high_a, rel_tol * high_a)

    # --- (d) refractory period ---------------------------------------------------------------------
    def refractory_period_s(self, amplitude_a: float, width_s: float, ramp: float, state: str | CircuitState = "post_spike", *,
                            tol_s: float = 5e-12, high_s: float = 60e-9) -> float:
        """Pair spacing (start to start) below which the second pulse at `amplitude_a` no longer
        makes the main wire switch (bisection between the pulses just touching and high_s)."""
        def second_fires(spacing_s: float) -> float:
            stop_s = START_S + spacing_s + width_s + 2 * ramp + SPIKE_AFTER_S
            drive = pulse_train(amplitude_a, width_s, ramp, [START_S, START_S + spacing_s])
            return 1.0 if self.main_switches(drive, stop_s, state, after_s=START_S + spacing_s) else -1.0
        low_s = width_s + ramp
        if second_fires(low_s) > 0:
            return low_s
        return bisect(second_fires, low_s, high_s, tol_s)

    # --- (e) f-I onset -----------------------------------------------------------------------------
    def onset_current_a(self, record_s: float, ramp: float = 0.0, state: str | CircuitState = "post_spike", *,
                        rel_tol: float = 1e-4, high_a: float = 30e-6, settle_s: float | None = None) -> float:
        """Smallest DC input at which the neuron fires repeatedly: two main-wire switches within
        record_s (firing_rate counts the spikes after the triggering one in a record). The
        input steps on (over `ramp`) from `state`. With settle_s, the two switches must come
        after settle_s: on the default neuron each spike leaves current in the loop and firing
        near onset stops after 10-30 spikes (a few hundred ns), so a record taken long after the
        input came on sees only the currents at which firing persists."""
        late_s = 0.0 if settle_s is None else settle_s
        stop_s = START_S + late_s + 50e-9 + record_s

        def repeats(current_a: float) -> float:
            drive = PiecewiseLinear(np.array([0.0, START_S, START_S + max(ramp, 1e-12)]),
                                    np.array([0.0, 0.0, current_a]))
            times = self.run(drive, stop_s, state).switch_times_s(MAIN_WIRE)
            times = times[times >= START_S + late_s]
            return 1.0 if times.size >= 2 and np.min(np.diff(times)) <= record_s else -1.0
        return bisect(repeats, 0.0, high_a, rel_tol * high_a)

    # --- (f) energy per spike ------------------------------------------------------------------------
    def delivered_j(self, amplitude_a: float, width_s: float, ramp: float, stop_s: float,
                    state: str | CircuitState = "post_spike") -> tuple[float, float, int]:
        """(input, bias) energy the sources deliver from 0 to stop_s, and the main wire's switches."""
        result = self.run(pulse_train(amplitude_a, width_s, ramp, [START_S]), stop_s, state)
        delivered = result.energy.delivered_j
        return (float(delivered[self.ports["input"]]), float(delivered[self.ports["bias"]]),
                len(result.switch_times_s(MAIN_WIRE)))

    def energy_per_spike_j(self, amplitude_a: float, reference_a: float, width_s: float, ramp: float,
                           record_after_s: float, state: str | CircuitState = "post_spike",
                           reference_state: str | CircuitState | None = None) -> float:
        """As energy_per_spike computes it, noise-free: the energy delivered through the input and
        bias ports over the record (the pulse, then record_after_s after its trailing edge) at
        `amplitude_a`, minus the sub-threshold baseline scaled from `reference_a` (input term
        by (A/A0)^2, bias term by A/A0), per main-wire spike."""
        stop_s = START_S + 0.5 * ramp + width_s + 2 * EDGE_OF_RAMP * ramp + record_after_s
        input_j, bias_j, spikes = self.delivered_j(amplitude_a, width_s, ramp, stop_s, state)
        ref_input_j, ref_bias_j, ref_spikes = self.delivered_j(reference_a, width_s, ramp, stop_s,
                                                               state if reference_state is None else reference_state)
        if ref_spikes or not spikes:
            return math.nan
        ratio = amplitude_a / reference_a
        return (input_j + bias_j - ratio**2 * ref_input_j - ratio * ref_bias_j) / spikes


def bisect(sign: Callable[[float], float], low: float, high: float, tol: float) -> float:
    """The x in [low, high] where sign(x) turns from negative to positive (NaN if it never does)."""
    if sign(high) <= 0:
        return math.nan
    if sign(low) > 0:
        return low
    while high - low > tol:
        mid = 0.5 * (low + high)
        low, high = (low, mid) if sign(mid) > 0 else (mid, high)
    return 0.5 * (low + high)


#: Spikes whose states stand for the cycle a measurement samples (two to four sawtooth periods).
CYCLE_SPIKES = 40


def cycle_states(chip: TruthChip, amplitude_a: float, width_s: float, ramp: float) -> list[CircuitState]:
    """The states after each of CYCLE_SPIKES spikes at amplitude_a from the fresh chip."""
    return chip.spike_states(amplitude_a, width_s, ramp, CYCLE_SPIKES, "fresh")


def spread(values: Sequence[float]) -> dict:
    v = np.asarray(values, dtype=float)
    return {"median": float(np.median(v)), "mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v))}


def switching_current_truth(chip: TruthChip, cycles: int = 24) -> dict:
    """(a) iv_sweep's switching_current_mean_a. `truth`: the mean switching level of noise-free
    fast sweeps cycling from 0.5 uA below the port's switching current up to the switch, as
    iv_sweep cycles (the flux each switch leaves spreads the levels over some 80 nA, below
    `both_at_isw`, the port current at which both wires carry their I_sw in the DC
    solution). `first_wire_port_a`: where the first wire switches, without a voltage."""
    both_a = chip.port_switching_current_a()
    levels = chip.port_sweep_switching_currents_a(both_a - 0.5e-6, cycles=cycles)[1:]
    return {"truth": float(np.mean(levels)), "both_at_isw": both_a, "first_wire_port_a": chip.first_wire_port_current_a(),
            "cycle": spread(levels), "wire_switching_current_a": {
                e.name: chip.wire_switching_current_a(e.name) for e in chip.circuit.elements if isinstance(e, Nanowire)}}


def threshold_truth(chip: TruthChip, width_s: float, ramp: float) -> dict:
    """(b) Threshold at a width: fresh chip, after one spike, and over the cycle of states that
    spikes at about threshold leave (`truth`: the cycle's median, the amplitude that fires from
    half of those states)."""
    fresh = chip.threshold_a(width_s, ramp, "fresh")
    states = cycle_states(chip, 1.05 * fresh, width_s, ramp)
    over = spread([chip.threshold_a(width_s, ramp, s, rel_tol=1e-4) for s in states])
    return {"truth": over["median"], "fresh": fresh, "post_spike": chip.threshold_a(width_s, ramp, states[0]),
            "cycle": over}


def strength_duration_truth(chip: TruthChip, widths_s: Sequence[float], ramp: float) -> dict:
    """(b, c) Thresholds at the widths, and rheobase and chronaxie from them fitted as the
    procedure fits its thresholds (Weiss), for the cycle medians and for the fresh chip."""
    per_width = [threshold_truth(chip, float(w), ramp) for w in widths_s]
    out = {"threshold_a": per_width}
    for which in ("truth", "fresh", "post_spike"):
        fit = fit_weiss(np.asarray(widths_s, dtype=float), np.array([t[which] for t in per_width]))
        out[f"rheobase_a_{which}"], out[f"chronaxie_s_{which}"] = fit.rheobase_a, fit.chronaxie_s
    return out


def refractory_truth(chip: TruthChip, amplitude_a: float, width_s: float, ramp: float) -> dict:
    """(d) Pair spacing below which a second pulse at amplitude_a no longer fires: fresh, after
    one spike and the median over the cycle of states the pairs' first spikes leave."""
    states = cycle_states(chip, amplitude_a, width_s, ramp)
    over = spread([chip.refractory_period_s(amplitude_a, width_s, ramp, s, tol_s=20e-12) for s in states])
    return {"truth": over["median"], "fresh": chip.refractory_period_s(amplitude_a, width_s, ramp, "fresh"),
            "post_spike": chip.refractory_period_s(amplitude_a, width_s, ramp, states[0]), "cycle": over}


def onset_truth(chip: TruthChip, record_s: float, settle_s: float = DC_INPUT_SETTLE_S) -> dict:
    """(e) Smallest DC input that fires repeatedly within a record: `truth` where firing
    persists settle_s after the input came on (what the emulated bench's records see: it settles
    the chip that long under a new DC level before an acquisition), `first_record`
    where the first spikes after switching the input on repeat (fresh chip)."""
    return {"truth": chip.onset_current_a(record_s, state="fresh", settle_s=settle_s),
            "first_record": chip.onset_current_a(record_s, state="fresh"),
            "first_record_post_spike": chip.onset_current_a(record_s, state="post_spike")}


def energy_truth(chip: TruthChip, amplitude_a: float, reference_a: float, width_s: float, ramp: float,
                 record_after_s: float) -> dict:
    """(f) Energy per spike at amplitude_a against the baseline from reference_a, over the cycle
    of successive spikes: `truth` the mean over every spike (what a long run of spiking captures
    averages), `single_spike` the mean over the captures with one main-wire spike and one
    control-wire reset (about one in 10-17 has the control wire switch twice: ~20.7 instead of
    ~15 aJ on the default neuron); the first spike of a fresh chip and the second beside them."""
    states = [chip.fresh_state] + cycle_states(chip, amplitude_a, width_s, ramp)
    stop_s = START_S + width_s + 2 * ramp + record_after_s
    energies, single = [], []
    for state in states[:-1]:
        energies.append(chip.energy_per_spike_j(amplitude_a, reference_a, width_s, ramp, record_after_s, state,
                                                reference_state=states[1]))
        result = chip.run(pulse_train(amplitude_a, width_s, ramp, [START_S]), stop_s, state)
        single.append(len(result.switch_times_s(MAIN_WIRE)) == 1 and len(result.switch_times_s("wc")) == 1)
    over = spread(energies) | {"single_spike_share": float(np.mean(single))}
    singles = [e for e, one in zip(energies, single) if one]
    return {"truth": over["mean"], "single_spike": float(np.mean(singles)) if singles else math.nan,
            "fresh": energies[0], "post_spike": energies[1], "cycle": over}


# --- cache -------------------------------------------------------------------------------------------

def chip_digest(station_path: str | Path = DEFAULT_STATION) -> str:
    """A short hash of the chip file, the wiring, this module and the solver (how the truths are
    computed): a cached truth is used only for all of them unchanged."""
    station = load_emulated_station(station_path)
    solver = b"".join(path.read_bytes() for path in sorted(Path(simulate.__code__.co_filename).parent.glob("*.py")))
    text = Path(station.chip_path).read_bytes() + Path(__file__).read_bytes() + solver
    wiring = repr((station.pulse_inputs, station.bias_lines, station.readouts)).encode()
    return hashlib.sha256(text + wiring).hexdigest()[:12]


class TruthCache:
    """Deterministic truths in a JSON file, keyed by what they were computed from."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.values: dict = json.loads(self.path.read_text()) if self.path.exists() else {}

    @staticmethod
    def key(kind: str, **conditions) -> str:
        parts = [f"{k}={_fmt(v)}" for k, v in sorted(conditions.items())]
        return f"{kind}(" + ", ".join(parts) + ")"

    def get(self, kind: str, compute: Callable[[], object], **conditions):
        key = self.key(kind, **conditions)
        if key not in self.values:
            self.values[key] = compute()
            self.path.write_text(json.dumps(self.values, indent=1, sort_keys=True) + "\n")
        return self.values[key]


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)
