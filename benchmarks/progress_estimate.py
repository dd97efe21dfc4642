"""How well the campaign's time-left estimate foretells what remains, on the emulated station.

Runs the full campaign, samples the campaign's estimate each time it changes, and compares it,
once the first 20 % of the wall time is done, with the time that actually remained (the
reference measured in the same run). Target: every sample within a factor 2 (below 0.5 s
left: within 0.5 s, a run's fixed cost and the scheduler's jitter being of that order).

    .ci/env python benchmarks/progress_estimate.py [--station stations/emulated.yaml]

(--station: a copy of the emulated station with its own bench, as tests/conftest.py makes, when
another run holds this one.) Also prints, per run, how many of the samples taken while it ran
("-": between runs) were within the target, its wall time and what was expected at its start.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from lab.app.campaign import run_campaign
from lab.execution.progress import CampaignProgress

ABSOLUTE_S = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--station", default="stations/emulated.yaml")
    args = parser.parse_args()
    samples: list[tuple[float, float, str]] = []                 # (time, estimated time left, run)
    expected: dict[str, float] = {}                              # run -> its expected wall time at its start
    changed = CampaignProgress.changed

    def sampled(self):
        now_s = time.monotonic()
        running = next((p for p in self.planned if p.state == "running"), None)
        if running is not None and running.name not in expected:
            expected[running.name] = self.current.prior_s
        samples.append((now_s, self.left_s(now_s), running.name if running is not None else "-"))
        changed(self)

    CampaignProgress.changed = sampled          # observe only: the original still runs
    out = Path(tempfile.mkdtemp(prefix="nwlab-progress-"))
    try:
        outcome = run_campaign(args.station, out, show_progress=False)
    finally:
        CampaignProgress.changed = changed
        shutil.rmtree(out, ignore_errors=True)
    began_s, ended_s = samples[0][0], samples[-1][0]
    factors, within, shown, misses = [], 0, 0.0, []
    per_run: dict[str, list[int]] = {}                           # run -> [samples, within]
    print(" done  estimated left  remained  ratio")
    for now_s, left_s, run in samples:
        done, actual_s = (now_s - began_s) / (ended_s - began_s), ended_s - now_s
        if done < 0.2:
            continue
        ratio = left_s / actual_s if actual_s > 0 else float("inf")
        ok = abs(left_s - actual_s) <= ABSOLUTE_S if actual_s < ABSOLUTE_S else 0.5 <= ratio <= 2.0
        within += ok
        if not ok:
            misses.append((done, run, left_s, actual_s))
        per_run.setdefault(run, [0, 0])[0] += 1
        per_run[run][1] += ok
        if actual_s >= ABSOLUTE_S:
            factors.append((max(ratio, 1 / ratio) if ratio > 0 else float("inf"), done, run, left_s, actual_s))
        if done >= shown:
            print(f"{done:5.0%}  {left_s:12.2f} s  {actual_s:7.2f} s  {ratio:5.2f}")
            shown = (int(done * 10) + 1) / 10
    for run, (count, ok) in per_run.items():
        measured = f"{outcome.per_procedure_wall_s[run]:.2f} s" if run in outcome.per_procedure_wall_s else "-"
        guess = f"{expected[run]:.2f} s" if run in expected else "-"
        print(f"  {run:20s} {ok:5d} of {count:5d} within; wall {measured}, expected at its start {guess}")
    for done, run, left_s, actual_s in misses[:20]:
        print(f"  miss at {done:6.1%} in {run}: estimated {left_s:.2f} s left, {actual_s:.2f} s remained")
    counted = sum(1 for now_s, _, _ in samples if (now_s - began_s) / (ended_s - began_s) >= 0.2)
    worst, *where = max(factors, default=(1.0,))
    if where:
        done, run, left_s, actual_s = where
        print(f"  worst at {done:6.1%} in {run}: estimated {left_s:.2f} s left, {actual_s:.2f} s remained")
    print(f"campaign {ended_s - began_s:.1f} s wall, all completed: {outcome.all_completed}; "
          f"{within} of {counted} samples after 20 % within the target; worst factor {worst:.2f} (target 2)")
    print(json.dumps({"benchmark": "progress_estimate", "wall_s": round(ended_s - began_s, 2),
                      "samples_after_20_percent": counted, "within_target": within,
                      "worst_factor": round(worst, 3), "target_factor": 2.0,
                      "all_completed": outcome.all_completed}))


if __name__ == "__main__":
    main()
