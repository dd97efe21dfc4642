"""Ground truth of the bias port's switching current on the emulated bench, by Monte Carlo.

Each wire switches when its current reaches I_sw(T) + σ·z (sim_backend/physics/nanowire.py
`switching_current_a`; σ = the chip file's sigma_isw; z a standard-normal draw, new after each
retrap: sim_backend/physics/transient.py). The port reads resistive only when both wires are,
which on the default neuron happens about I_sw,m + I_sw,c minus the current that trapped flux
leaves short of the second wire's threshold: a protocol- and flux-dependent offset that no
closed formula gives. So the truth is sampled: the chip (as the bench wires it) is stepped up
from the reset level in fine steps, each step applied and read as the emulated source meter
does (sim_backend/bench/world.py `chip_at_present_bias`, `bias_port_voltage_v`: a static DC
redistribution when nothing can switch, else a BIAS_RAMP_S ramp simulated for DC_SETTLE_S and
on while it is still switching (`run_out`), then the mean port voltage over DC_READING_S),
reset below retrapping after each switch, many times.
The mean of the first resistive levels (minus half a step) is the port's mean switching
current, with its Monte Carlo standard error.

    .venv/bin/python -m tests.procedures.iv_ground_truth 1000   # ~3 min: mean, std, stderr, T
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

from sim_backend.bench.chip import ChipUnderTest, port_node
from sim_backend.bench.world import BIAS_RAMP_S, DC_READING_S, DC_SETTLE_S, run_out

#: The procedure's path between levels: steps of at most ramp_a_per_s · dwell_s (defaults).
MAX_STEP_A = 2e-6


def _path(start_a: float, stop_a: float) -> np.ndarray:
    count = max(int(np.ceil(abs(stop_a - start_a) / MAX_STEP_A - 1e-9)), 1)
    return start_a + (stop_a - start_a) * np.arange(1, count + 1) / count


def port_switching_currents(world, attempts: int, *, seed: int = 1, step_a: float = 5e-9,
                            reset_a: float = 33.9e-6, start_a: float = 36.25e-6, stop_a: float = 37.1e-6,
                            switched_v: float = 10e-6) -> np.ndarray:
    """Switching currents of the bias port: per attempt, up from reset_a to start_a in the
    procedure's steps, then in steps of step_a until |V| > switched_v (recorded half a step
    below), then back to reset_a (through zero when it did not retrap). NaN: no switch by stop_a."""
    chip = ChipUnderTest.from_station(world.station)
    temperature_k = world.stage_temperature_k()
    node = port_node(chip.definition, "bias")
    rng = np.random.default_rng(seed)

    def volts(level_a: float) -> float:
        bias = {"bias": float(level_a)}
        chip.release_latch_if_unbiased(bias)
        if bias != (chip.bias_a or {}) and not chip.static_bias_change(bias, temperature_k=temperature_k, rng=rng):
            result = chip.run(start_s=0.0, stop_s=DC_SETTLE_S, bias_a=bias, inputs_a={},
                              sample_times_s=np.array([DC_SETTLE_S]), temperature_k=temperature_k, rng=rng,
                              bias_ramp_s=BIAS_RAMP_S)
            run_out(chip, result, bias, temperature_k, rng)
        if chip.settled:
            return 0.0
        result = chip.run(start_s=0.0, stop_s=DC_READING_S, bias_a=bias, inputs_a={},
                          sample_times_s=np.linspace(0.0, DC_READING_S, 101), temperature_k=temperature_k, rng=rng)
        return float(np.mean(result.node_voltage_v[node]))

    for level_a in _path(0.0, reset_a):
        volts(level_a)
    found = np.full(attempts, np.nan)
    for attempt in range(attempts):
        for level_a in _path(reset_a, start_a):
            volts(level_a)
        level_a = start_a
        for level_a in np.arange(start_a + step_a, stop_a + step_a / 2, step_a):
            if abs(volts(level_a)) > switched_v:
                found[attempt] = level_a - step_a / 2
                break
        for level_a in _path(level_a, reset_a):
            volts(level_a)
        if abs(volts(reset_a)) > switched_v:
            for level_a in np.concatenate([_path(reset_a, 0.0), _path(0.0, reset_a)]):
                volts(level_a)
    return found


def main(attempts: int) -> dict:
    from tests.procedures.test_end_to_end import Bench

    logging.getLogger("qcodes").setLevel(logging.ERROR)
    bench = Bench(Path(tempfile.mkdtemp()))
    try:
        world = bench.bench.world
        found = port_switching_currents(world, attempts)
        ok = found[np.isfinite(found)]
        return {"temperature_k": world.stage_temperature_k(), "attempts": attempts, "switched": int(ok.size),
                "mean_a": float(ok.mean()), "std_a": float(ok.std(ddof=1)),
                "stderr_a": float(ok.std(ddof=1) / np.sqrt(ok.size))}
    finally:
        bench.instruments.close()


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)))
