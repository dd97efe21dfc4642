"""Compile the emulator's numba kernels into their on-disk cache, once, before anything waits on them.

In a fresh clone the cache (`__pycache__/*.nbi`, `*.nbc` beside the sources) is empty, and the
first campaign compiled the kernels as it met them: its I–V stalled for ~45 s on this 2-core
machine while its progress showed seconds left. `.ci/env` runs this when it sets up the
environment, and the test suite's controlling process before its workers start (tests/conftest.py),
so runs, tests and benchmarks start from the cache (loading a kernel takes milliseconds; numba's
code generator is set up on the first, ~0.2 s).

    python -m sim_backend.compile_kernels STATION.yaml

Compiles what an acquisition and an SMU reading on that station's bench use: the temperature
controller's loop (built with the bench), the circuit solver (a short run of the chip), and the
scope's filters, resampling and ADC pass. A chip whose network is linear crosses its
superconducting stretches with kernels of their own, compiled when first used.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from sim_backend.bench import signal_processing
from sim_backend.emulator import build_bench


def compile_kernels(station_path: str | Path) -> None:
    chip = build_bench(station_path).world.chip     # the bench: the temperature controller's loop kernel
    chip.run(start_s=0.0, stop_s=20e-9, bias_a={port: 20e-6 for port in chip.port_sources}, inputs_a={},
             sample_times_s=np.linspace(0.0, 20e-9, 11), temperature_k=3.0,
             rng=np.random.default_rng(0))            # the circuit solver's kernels
    step_s, times_s = 25e-12, np.linspace(0.0, 40e-9, 500)
    trace = np.sin(np.arange(2000) * 0.01)
    filtered = signal_processing.low_pass(trace, step_s, 5e9)
    signal_processing.resample(0.0, step_s, filtered, times_s)
    signal_processing.low_pass_of_piecewise_linear(np.array([0.0, 1e-9, 2e-9]), np.array([0.0, 1.0, 0.0]), 1.0,
                                                   np.arange(2000) * step_s, step_s, 5e9)
    signal_processing.digitize(0.0, step_s, filtered, times_s, np.random.default_rng(0), 1e-3, 0.0, 1e-2, 8)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m sim_backend.compile_kernels STATION.yaml", file=sys.stderr)
        return 2
    began = time.perf_counter()
    compile_kernels(argv[0])
    print(f"[nwlab] the emulator's kernels are compiled ({time.perf_counter() - began:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
