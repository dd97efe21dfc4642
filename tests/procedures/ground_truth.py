"""Ground truth for end-to-end tests: the chip simulated directly, as the emulated bench wires it.

Pulses are built as the emulated generator builds them (a 10-90 % edge t is a linear ramp of
t/0.8, the width measured at half height). Thresholds and refractory periods are found by
bisection on the main wire's switch events, from the DC state at the bias and stage temperature.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sim_backend.bench.chip import ChipUnderTest
from sim_backend.physics.dc import dc_state
from sim_backend.physics.nanowire import switching_current_a
from sim_backend.physics.transient import simulate
from sim_backend.physics.waveform import PiecewiseLinear

START_S = 1e-9


def pulse_train(amplitude_a: float, width_s: float, edge_s: float, starts_s) -> PiecewiseLinear:
    ramp_s = edge_s / 0.8
    times, values = [0.0], [0.0]
    for start in starts_s:
        times += [start, start + ramp_s, start + width_s, start + width_s + ramp_s]
        values += [0.0, amplitude_a, amplitude_a, 0.0]
    return PiecewiseLinear(np.asarray(times), np.asarray(values))


class Chip:
    """The bench's circuit (chip + wiring loads) at a stage temperature and DC bias."""

    def __init__(self, bench, bias_a: float):
        self.chip = ChipUnderTest.from_station(bench.world.station)
        self.temperature_k = bench.world.stage_temperature_k()
        self.bias_a = bias_a
        ports = self.chip.port_sources
        self.bias_source, self.input_source = ports["bias"], ports["input"]
        self.initial = dc_state(self.chip.circuit, temperature_k=self.temperature_k,
                                source_values={self.bias_source: bias_a, self.input_source: 0.0})

    def switching_current_a(self, wire: str) -> float:
        return switching_current_a(self.chip.circuit.element(wire).params, self.temperature_k)

    def run(self, drive: PiecewiseLinear, stop_s: float, seed: int = 0):
        return simulate(self.chip.circuit, stop_s,
                        drives={self.bias_source: PiecewiseLinear.constant(self.bias_a), self.input_source: drive},
                        temperature_k=self.temperature_k, rng=np.random.default_rng(seed),
                        initial=replace(self.initial, time_s=0.0))

    def main_switches(self, drive: PiecewiseLinear, stop_s: float, after_s: float = 0.0) -> int:
        return sum(e.element == "wm" and e.kind == "switch" and e.time_s >= after_s
                   for e in self.run(drive, stop_s).events)

    def threshold_a(self, width_s: float, edge_s: float, low_a: float = 1e-6, high_a: float = 100e-6,
                    steps: int = 14) -> float:
        stop_s = START_S + width_s + 2 * edge_s + 10e-9
        for _ in range(steps):
            mid = 0.5 * (low_a + high_a)
            fired = self.main_switches(pulse_train(mid, width_s, edge_s, [START_S]), stop_s) > 0
            low_a, high_a = (low_a, mid) if fired else (mid, high_a)
        return 0.5 * (low_a + high_a)

    def refractory_s(self, amplitude_a: float, width_s: float, edge_s: float, low_s: float, high_s: float,
                     steps: int = 10) -> float:
        """Shortest spacing at which the second pulse makes the main wire switch again."""
        for _ in range(steps):
            mid = 0.5 * (low_s + high_s)
            stop_s = START_S + mid + width_s + 2 * edge_s + 10e-9
            second = self.main_switches(pulse_train(amplitude_a, width_s, edge_s, [START_S, START_S + mid]),
                                        stop_s, after_s=START_S + mid)
            low_s, high_s = (low_s, mid) if second else (mid, high_s)
        return 0.5 * (low_s + high_s)
