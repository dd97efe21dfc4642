"""Firing rates from spike counts in records: each point's rate with its interval, and the slope
of the rate against the input current (the f–I gain) with its interval.

A relaxation oscillator's spike count is not Poisson: nearly periodic above onset (a count that
varies by ±1 between records: a Poisson interval would be several times too wide), a few spikes
or none from one record to the next near onset (wider than Poisson). So the interval comes from
the records' own spread, a Student t interval on the mean of the records' rates; the exact
Poisson (Garwood) interval is used only where that spread says nothing: no spike in any record
([0, χ²(1 − α/2; 2)/2 / T], T the records' total time) or a single record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contracts.records import Uncertainty
from procedures.analysis.statistics import CONFIDENCE_LEVEL, mean_uncertainty, summarize
from procedures.analysis.distributions import chi2_quantile, t_quantile

RATE_METHOD = ("Student t interval on the mean of the records' rates (spikes after the trigger over the time they "
               "were counted in: to the last spike where the train runs on to the record's end, else to the end); "
               "exact Poisson (Garwood) interval on the total count over the total time where no record had a "
               "spike or one record was taken")
#: A train whose last spike comes within this many of its mean intervals of the record's end runs
#: on past it (a periodic train's gap is below one interval; the margin takes the jitter).
RUNS_ON_INTERVALS = 1.5


def counted_time_s(after_trigger_s, record_end_s: float) -> float:
    """The time a triggered record's spikes after the trigger were counted in. The record starts
    on a spike, so a train that runs on to the record's end has its k spikes in k intervals up to
    the last of them: the count over the whole record would round down and read the rate low by
    up to one spike per record (1-10 % on 99 ns records at 90-160 MHz). A train that stopped
    earlier (a burst near onset, a gap of more than RUNS_ON_INTERVALS intervals before the end)
    was counted over the whole record."""
    times = np.asarray(after_trigger_s, dtype=float)
    if times.size == 0:
        return float(record_end_s)
    last = float(times.max())
    runs_on = record_end_s - last <= RUNS_ON_INTERVALS * last / times.size
    return last if runs_on and last > 0 else float(record_end_s)


def garwood_interval(count: int, total_s: float, level: float = CONFIDENCE_LEVEL) -> tuple[float, float]:
    """Exact (Garwood) interval on a Poisson rate: `count` events in `total_s`."""
    tail = (1 - level) / 2
    low = 0.0 if count == 0 else chi2_quantile(tail, 2 * count) / 2
    high = chi2_quantile(1 - tail, 2 * count + 2) / 2
    return low / total_s, high / total_s


def rate_uncertainty(spikes, durations_s, level: float = CONFIDENCE_LEVEL) -> tuple[np.ndarray, Uncertainty]:
    """Per point (lists of per-record arrays): the mean of the records' rates and its interval
    (see the module doc); the standard uncertainty is the standard error of that mean (NaN
    where the Poisson interval was used)."""
    rates, low, high, standard = [], [], [], []
    for counts, times in zip(spikes, durations_s):
        counts, times = np.asarray(counts, dtype=float), np.asarray(times, dtype=float)
        per_record = counts / times
        summary = summarize(per_record)
        rates.append(summary.mean)
        if counts.sum() == 0 or summary.count < 2:
            bounds = garwood_interval(int(counts.sum()), float(times.sum()), level)
            low.append(bounds[0])
            high.append(bounds[1])
            standard.append(math.nan)
        else:
            t = mean_uncertainty(summary, level)
            low.append(max(0.0, float(t.low)))
            high.append(float(t.high))
            standard.append(float(t.standard))
    return np.array(rates), Uncertainty(RATE_METHOD, level, np.array(low), np.array(high), np.array(standard))


@dataclass(frozen=True)
class Gain:
    """The least-squares line f = rate_mean + slope·(I − current_mean) through the records'
    rates, over the currents it was fitted to (`currents_a`); `uncertainty` is the slope's."""
    slope_hz_per_a: float
    uncertainty: Uncertainty
    current_mean_a: float
    rate_mean_hz: float
    currents_a: np.ndarray

    def rate_hz(self, current_a) -> np.ndarray:
        return self.rate_mean_hz + self.slope_hz_per_a * (np.asarray(current_a, dtype=float) - self.current_mean_a)


def gain_fit(currents_a, spikes, durations_s, level: float = CONFIDENCE_LEVEL) -> Gain:
    """Least-squares slope of the records' rates against the current (one current per entry,
    lists of per-record arrays), with a Student t interval (records − 2 degrees of freedom);
    NaN with fewer than two currents or three records."""
    currents_a = np.asarray(currents_a, dtype=float)
    x = np.concatenate([np.full(np.size(k), c) for c, k in zip(currents_a, spikes)]) if currents_a.size \
        else np.array([])
    y = np.concatenate([np.asarray(k, float) / np.asarray(t, float) for k, t in zip(spikes, durations_s)]) \
        if currents_a.size else np.array([])
    method = (f"Student t interval on the least-squares slope of {y.size} records' rates against the current, "
              f"over the {currents_a.size} currents where every record fired")
    if np.unique(x).size < 2 or y.size < 3:
        return Gain(math.nan, Uncertainty(method, level, math.nan, math.nan), math.nan, math.nan, currents_a)
    sxx = float(np.sum((x - x.mean()) ** 2))
    slope = float(np.sum((x - x.mean()) * (y - y.mean())) / sxx)
    residual = y - y.mean() - slope * (x - x.mean())
    error = math.sqrt(float(np.sum(residual**2)) / (y.size - 2) / sxx)
    half = t_quantile(0.5 + level / 2, y.size - 2) * error
    return Gain(slope, Uncertainty(method, level, slope - half, slope + half, error), float(x.mean()),
                float(y.mean()), currents_a)


def every_record_fired(currents_a, spikes) -> np.ndarray:
    """Which currents had a spike after the trigger in every record (where the gain is fitted)."""
    return np.array([bool(np.all(np.asarray(k) > 0)) for k in spikes], dtype=bool).reshape(np.shape(currents_a))
