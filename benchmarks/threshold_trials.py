"""Trials a threshold needs: the adaptive psychometric search against the bisection it replaced.

A simulated Bernoulli observer, P(spike | A) = Φ((A − μ)/σ), on the default bracket (0.4 to 4
design thresholds: 4.8 to 48 µA), μ drawn log-uniformly from 10 to 30 µA for each repetition
(a fixed μ would favour the bisection wherever it happens to sit near one of its midpoints),
and σ/μ as the emulator shows it (strength_duration on stations/emulated.yaml: σ below
0.1 µA, ~0.5 % of μ, at 2 and 5 ns, whose intervals reach 0; σ ~2.5 µA, ~20 % of μ, at 10
and 20 ns, where the chip's memory of earlier pulses spreads the responses), and 5 % between. For one requested precision (the half-width of a 95 % interval, as a fraction of μ):

* psychometric: `repetitions` searches (procedures' grid) stopping at that precision; its
  precision reached is the 95th percentile of |μ̂ − μ| over them (what a 95 % half-width must
  be, measured, not the method's own claim), and the fraction of its credible intervals that
  cover μ;
* bisection: the old plan (the bracket halved `steps` times, `trials` captures per amplitude,
  P >= 0.5 keeps the lower half), for every trials x steps, its reached precision measured the
  same way; the cheapest trials x steps reaching the precision is its count.

Prints a table and a final JSON line; ratio = bisection trials / psychometric mean trials.

    .ci/env python benchmarks/threshold_trials.py [--precision 0.03] [--repetitions 100]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from procedures.analysis.psychometric import PsiSearch, probability

LOW_A, HIGH_A = 4.8e-6, 48e-6
MU_RANGE_A = (10e-6, 30e-6)
SIGMA_FRACTIONS = (0.005, 0.05, 0.2)


def thresholds_a(repetitions: int, rng) -> np.ndarray:
    return np.exp(rng.uniform(np.log(MU_RANGE_A[0]), np.log(MU_RANGE_A[1]), repetitions))


def psychometric(fraction: float, precision: float, repetitions: int, trials_max: int, seed: int):
    rng = np.random.default_rng(seed)
    mu_a = thresholds_a(repetitions, rng)
    search = PsiSearch(LOW_A, HIGH_A, batch=repetitions)
    active = np.ones(repetitions, dtype=bool)
    while active.any():
        rows = np.flatnonzero(active)
        index = search.next_index(rows)
        p = probability(search.stimuli[index], mu_a[rows], fraction * mu_a[rows], lapse=0.0)
        search.update(index, rng.random(rows.size) < p, rows)
        active[rows] = ~search.done(precision)[rows] & (search.trials[rows] < trials_max)
    mu = search.posterior.midpoint(0.95)
    error = np.abs(np.where(np.isfinite(mu.value), mu.value, np.inf) / mu_a - 1)
    covered = float(np.mean((mu.low <= mu_a) & (mu_a <= mu.high)))
    return float(np.mean(search.trials)), float(np.percentile(error, 95)), covered


def bisection_error(fraction: float, trials: int, steps: int, repetitions: int, rng) -> float:
    """95th percentile of |estimate − μ| / μ of the old bisection (NaN, i.e. never crossed
    inside the bracket, counts as an infinite error)."""
    mu_a = thresholds_a(repetitions, rng)
    low = np.full(repetitions, LOW_A)
    high = np.full(repetitions, HIGH_A)
    for _ in range(steps):
        mid = 0.5 * (low + high)
        p = rng.binomial(trials, probability(mid, mu_a, fraction * mu_a, lapse=0.0)) / trials
        fired = p >= 0.5
        high, low = np.where(fired, mid, high), np.where(fired, low, mid)
    estimate = np.where((low == LOW_A) | (high == HIGH_A), np.inf, 0.5 * (low + high))
    return float(np.percentile(np.abs(estimate / mu_a - 1), 95))


def bisection(fraction: float, precision: float, repetitions: int, seed: int):
    """The cheapest (trials x steps, trials, steps, reached) whose reached precision is within
    `precision`; None when no combination up to 64 trials x 16 steps reaches it."""
    rng = np.random.default_rng(seed)
    best = None
    for trials in range(1, 65):
        for steps in range(1, 17):
            if best is not None and trials * steps >= best[0]:
                break
            reached = bisection_error(fraction, trials, steps, repetitions, rng)
            if reached <= precision:
                best = (trials * steps, trials, steps, reached)
                break
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", type=float, default=0.03)
    parser.add_argument("--repetitions", type=int, default=100, help="psychometric searches per sigma")
    parser.add_argument("--bisection-repetitions", type=int, default=4000)
    parser.add_argument("--trials-max", type=int, default=1000)
    args = parser.parse_args()
    started = time.monotonic()
    rows = []
    print(f"threshold {MU_RANGE_A[0] * 1e6:g}-{MU_RANGE_A[1] * 1e6:g} uA (log-uniform), bracket "
          f"{LOW_A * 1e6:g}-{HIGH_A * 1e6:g} uA, requested 95 % half-width {args.precision:.1%} of the threshold "
          "(reached = 95th percentile of |error| over repetitions)")
    print(f"{'sigma/mu':>9} | {'psi trials':>10} {'reached':>8} {'covers':>7} | {'bisection':>9} {'trials x steps':>15} "
          f"{'reached':>8} | {'ratio':>6}")
    for k, fraction in enumerate(SIGMA_FRACTIONS):
        psi_trials, psi_reached, covered = psychometric(fraction, args.precision, args.repetitions, args.trials_max,
                                                        seed=100 + k)
        # Give the bisection the precision the psychometric search actually reached, if looser.
        target = max(args.precision, psi_reached)
        found = bisection(fraction, target, args.bisection_repetitions, seed=200 + k)
        total = found[0] if found else float("nan")
        ratio = total / psi_trials
        rows.append({"sigma_over_mu": fraction, "psychometric_trials_mean": psi_trials, "psychometric_reached": psi_reached,
                     "psychometric_coverage": covered, "bisection_trials": total,
                     "bisection_trials_per_step": found[1] if found else None,
                     "bisection_steps": found[2] if found else None,
                     "bisection_reached": found[3] if found else None, "ratio": ratio})
        shape = f"{found[1]} x {found[2]}" if found else "none <= 64x16"
        print(f"{fraction:9.1%} | {psi_trials:10.1f} {psi_reached:8.2%} {covered:7.1%} | {total:9} {shape:>15} "
              f"{found[3] if found else float('nan'):8.2%} | {ratio:6.2f}")
    print(json.dumps({"benchmark": "threshold_trials", "precision": args.precision, "repetitions": args.repetitions,
                      "rows": rows, "wall_s": round(time.monotonic() - started, 1)}))


if __name__ == "__main__":
    main()
