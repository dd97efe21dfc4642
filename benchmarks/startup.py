"""How long a fresh process takes to have the emulated station open, against the imports alone.

Every `nwlab` command, served station, sweep worker and many tests start a process that imports
the libraries (numba, qcodes, scipy, h5py, pyvisa), loads the compiled kernels and opens the
station. Timed here in fresh interpreters, alternating (the machine is shared), each start's
wall time from the interpreter's launch to its exit:

- `imports`: the libraries alone (the reference, measured in the same run);
- `station`: the emulated station read, every instrument's driver opened on the in-process
  emulator, one snapshot of all of them (what a run does before its first step, without the
  archive);
- `dry_run`: `nwlab dry-run campaign` on the shipped emulated station (plans every procedure,
  opens nothing).

Prints the best and the median of each, the station's start over the imports' (what the
project adds to a start), and one JSON line {"benchmark": "startup", ...}.

    .ci/env python benchmarks/startup.py [--starts 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = "import numba, qcodes, scipy.optimize, scipy.special, h5py, pyvisa"
STATION = ("from contracts.files.station import read_station\n"
           "from lab.execution.instruments import open_instruments\n"
           "instruments = open_instruments(read_station('stations/emulated.yaml'))\n"
           "instruments.snapshot()\n"
           "instruments.close()\n")
NWLAB = str(Path(sys.executable).with_name("nwlab"))
COMMANDS = {
    "imports": [sys.executable, "-c", IMPORTS],
    "station": [sys.executable, "-c", STATION],
    "dry_run": [NWLAB, "dry-run", "campaign", "--station", "stations/emulated.yaml"],
}


def start_s(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=10, help="starts of each, alternating")
    args = parser.parse_args()
    for command in COMMANDS.values():                 # compiled kernels and .pyc files in place
        start_s(command)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.starts):
        for name, command in COMMANDS.items():
            times[name].append(start_s(command))
    best = {name: min(values) for name, values in times.items()}
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"{'start':<10}{'best s':>9}{'median s':>10}   ({args.starts} starts each, alternating)")
    for name in COMMANDS:
        print(f"{name:<10}{best[name]:>9.3f}{median[name]:>10.3f}")
    ratio = best["station"] / best["imports"]
    print(f"the station open against the libraries' imports alone: {ratio:.2f}x "
          f"(the project adds {best['station'] - best['imports']:.3f} s at best)")
    print(json.dumps({"benchmark": "startup", "starts": args.starts,
                      "best_s": {k: round(v, 3) for k, v in best.items()},
                      "median_s": {k: round(v, 3) for k, v in median.items()},
                      "station_vs_imports": round(ratio, 3),
                      "project_s": round(best["station"] - best["imports"], 3),
                      "all_s": {k: [round(v, 3) for v in values] for k, values in times.items()}}))


if __name__ == "__main__":
    main()
