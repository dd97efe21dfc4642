"""Wall time of the full characterization campaign on the emulated station, per procedure.

The reference measured in the same run is the campaign's own estimated lab time (the dry
run's sum, what the campaign would take on the real bench): lab time over wall time is the
acceleration the emulator achieved, against the clock's nominal acceleration.

    .ci/env python benchmarks/campaign.py [--station stations/emulated.yaml] [--out DIR] [--set P.N=V ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from lab.app.campaign import run_campaign
from contracts.files.station import read_station
from lab.app.run_cli import parse_sets

TARGET_S = 10.0   # at the shipped defaults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--station", default="stations/emulated.yaml")
    parser.add_argument("--out", help="keep the archives and report here (default: a temporary directory)")
    parser.add_argument("--set", action="append", default=[], metavar="PROCEDURE.NAME=VALUE")
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="nwlab-campaign-"))
    try:
        began = time.perf_counter()
        outcome = run_campaign(args.station, out, show_progress=False, overrides=parse_sets(args.set, dotted=True))
        wall_s = time.perf_counter() - began
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    acceleration = read_station(args.station).clock_acceleration
    lab_s = outcome.estimated_lab_time_s
    # Before the first run (imports, station checks, dry runs, opening the instruments), between
    # runs, and the wait for the last report after the last run.
    outside_runs_s = wall_s - sum(outcome.per_procedure_wall_s.values())
    print(f"{'procedure':<20}{'status':<12}{'wall s':>9}")
    for name, run in outcome.outcomes.items():
        print(f"{name:<20}{run.exit_status:<12}{outcome.per_procedure_wall_s.get(name, float('nan')):>9.2f}")
    for name, why in outcome.not_run:
        print(f"{name:<20}{'not run':<12}{'':>9}  {why}")
    print(f"{'outside the runs':<32}{outside_runs_s:>9.2f}")
    print(f"campaign wall time {wall_s:.1f} s (target {TARGET_S:.0f} s); estimated lab time {lab_s:.1f} s; "
          f"achieved acceleration {lab_s / wall_s:.1f}x (clock nominal {acceleration:g}x)")
    print(json.dumps({"benchmark": "campaign", "wall_s": round(wall_s, 2),
                      "per_procedure_s": {k: round(v, 2) for k, v in outcome.per_procedure_wall_s.items()},
                      "outside_runs_s": round(outside_runs_s, 2),
                      "target_s": TARGET_S, "estimated_lab_s": round(lab_s, 1),
                      "acceleration": round(lab_s / wall_s, 1), "all_completed": outcome.all_completed}))


if __name__ == "__main__":
    main()
