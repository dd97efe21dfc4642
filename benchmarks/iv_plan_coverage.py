"""Coverage of iv_sweep's intervals on the mean switching current, for its plan alone: the plan is
driven by a synthetic port whose switching thresholds are independent Gaussian draws (a new draw
after each retrap, at a fixed retrapping current), so whatever the emulator's physics adds (flux
left by each switch, dynamics of the bias steps) is absent. Per repetition the archived intervals
of switching_current_mean_a (Student t) and switching_fit_mean_a (profile likelihood) are checked
against the true mean; prints coverage with its exact 95 % interval, the values' scatter over the
stated standard uncertainty, and a final JSON line.

    .ci/env python benchmarks/iv_plan_coverage.py [--events 30] [--repetitions 300]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
# This file's directory must not be on the path: its name would shadow the `coverage` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from contracts import steps  # noqa: E402
from contracts.procedure import PlanContext  # noqa: E402
from contracts.records import Result  # noqa: E402
from procedures.iv_sweep import IvSweep  # noqa: E402

DESIGN = yaml.safe_load((ROOT / "stations" / "chips" / "default-neuron.yaml").read_text())
MEAN_A, SIGMA_A, RETRAP_A = 36.595e-6, 70e-9, 34.4e-6     # about the emulated port's
FIGURES = ("switching_current_mean_a", "switching_fit_mean_a")


def run(seed: int, **parameters) -> dict[str, Result]:
    """One plan, replied to by the synthetic port; its archived results by name."""
    rng = np.random.default_rng(seed)
    port = {"resistive": False, "threshold_a": rng.normal(MEAN_A, SIGMA_A)}

    def volts(levels_a) -> list[float]:
        out = []
        for level_a in levels_a:
            if port["resistive"] and level_a < RETRAP_A:
                port["resistive"], port["threshold_a"] = False, rng.normal(MEAN_A, SIGMA_A)
            elif not port["resistive"] and level_a >= port["threshold_a"]:
                port["resistive"] = True
            out.append(1e-3 if port["resistive"] else 0.0)
        return out

    plan = IvSweep(**parameters).plan(PlanContext(chip_design=DESIGN))
    results, reply = {}, None
    while True:
        try:
            step = plan.send(reply)
        except StopIteration:
            return results
        if isinstance(step, steps.Archive) and isinstance(step.record, Result):
            results[step.record.name] = step.record
        reply = volts(step.levels_a) if isinstance(step, steps.SweepBias) else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--repetitions", type=int, default=300)
    args = parser.parse_args()
    covered = dict.fromkeys(FIGURES, 0)
    values = {name: [] for name in FIGURES}
    level = None
    for seed in range(args.repetitions):
        results = run(seed, switching_events=args.events, pilot_sweeps=1)
        for name in FIGURES:
            u = results[name].uncertainty
            level = u.level
            covered[name] += bool(u.low <= MEAN_A <= u.high)
            values[name].append((float(results[name].value), float(u.standard)))
    summary = {}
    for name in FIGURES:
        k, n = covered[name], args.repetitions
        ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
        v = np.array(values[name])
        scatter = float(v[:, 0].std(ddof=1) / v[:, 1].mean())
        bias_na = float((v[:, 0].mean() - MEAN_A) * 1e9)
        summary[name] = {"covered": k, "repetitions": n, "coverage": k / n, "coverage_ci": [ci.low, ci.high],
                         "claimed": level, "p": float(stats.binomtest(k, n, level).pvalue),
                         "scatter_over_standard": scatter, "bias_na": bias_na}
        print(f"{name:<26} {k}/{n} = {k / n:.3f} ({ci.low:.3f}-{ci.high:.3f}), claimed {level:.2f}; "
              f"scatter / standard uncertainty {scatter:.2f}; mean − truth {bias_na:+.2f} nA")
    print(json.dumps({"benchmark": "iv_plan_coverage", "events": args.events, "figures": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
