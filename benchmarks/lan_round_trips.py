"""Query round trips per second over each LAN transport the emulator serves: `*IDN?` of the
emulated Keithley 2450 from pyvisa-py on 127.0.0.1, over the raw socket (the reference, measured
in the same run), VXI-11 and HiSLIP. Rounds are interleaved (the machine is shared) and each
transport's best round is reported, with every round's figure in the JSON line.

VXI-11 uses the stock address when the port mapper could take port 111, else the address that
names the core port (docs/lan-transports.md); the JSON line says which.

    .ci/env python benchmarks/lan_round_trips.py [--queries 500] [--rounds 3]

Prints a table and one JSON line {"benchmark": "lan_round_trips", ...}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pyvisa

from sim_backend.clock import LabClock
from sim_backend.emulator import build_bench
from sim_backend.transport.bench_server import BenchServer

ROOT = Path(__file__).resolve().parents[1]
ROLE = "bias"                                   # the Keithley 2450: a short reply, no physics
WARM_UP = 50


def queries_per_s(resource, queries: int) -> float:
    for _ in range(WARM_UP):
        resource.query("*IDN?")
    started_s = time.perf_counter()
    for _ in range(queries):
        resource.query("*IDN?")
    return queries / (time.perf_counter() - started_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bench = build_bench(ROOT / "stations" / "emulated.yaml", clock=LabClock(1.0))
    rm = pyvisa.ResourceManager("@py")
    with BenchServer(bench, vxi11=True, hislip=True) as server:
        served = next(s for s in server.instruments if s.role == ROLE)
        addresses = {"raw_socket": served.server.visa_address, "vxi11": served.vxi11_address,
                     "hislip": served.hislip_address}
        resources = {name: rm.open_resource(address, timeout=5000) for name, address in addresses.items()}
        resources["raw_socket"].read_termination = resources["raw_socket"].write_termination = "\n"
        rounds: dict[str, list[float]] = {name: [] for name in resources}
        for _ in range(args.rounds):
            for name, resource in resources.items():
                rounds[name].append(queries_per_s(resource, args.queries))
        stock_vxi11 = server.vxi11 is not None and server.vxi11.portmapper is not None
        for resource in resources.values():
            resource.close()
    rm.close()
    best = {name: max(values) for name, values in rounds.items()}
    reference = best["raw_socket"]
    print(f"{'transport':<12}{'queries/s':>12}{'vs raw socket':>16}   ({args.rounds} rounds x {args.queries} *IDN?)")
    for name, value in best.items():
        print(f"{name:<12}{value:>12.0f}{value / reference:>16.2f}")
    print(json.dumps({"benchmark": "lan_round_trips", "queries": args.queries, "rounds": args.rounds,
                      "raw_socket_per_s": round(reference, 1), "vxi11_per_s": round(best["vxi11"], 1),
                      "hislip_per_s": round(best["hislip"], 1),
                      "vxi11_vs_raw": round(best["vxi11"] / reference, 3),
                      "hislip_vs_raw": round(best["hislip"] / reference, 3),
                      "vxi11_stock_address": stock_vxi11,
                      "rounds_per_s": {name: [round(v, 1) for v in values] for name, values in rounds.items()}}))


if __name__ == "__main__":
    main()
