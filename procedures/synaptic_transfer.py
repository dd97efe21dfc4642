"""Synaptic transfer against the synapse's weight (control) current: after each pre-neuron spike,
does the post-neuron fire, and how long after.

The pre-neuron is fired by its input at `threshold_factor` x its threshold (handed on from
strength_duration, else the chip file's, else a quick search), with the post-neuron at its bias
(`post_bias_a`, the design's by default) and the weight source stepped through
`weight_points` levels from `weight_min_a` to `weight_max_a` (by default 0.90 to 1.02 x the
design weight, inside the weight source's envelope). At each weight: `reference_captures`
sub-threshold captures (the pre input at `reference_fraction` x threshold: nothing fires) give
the linear response each node is read against, then `captures` captures at the firing amplitude.
A capture whose pre output shows a spike is a trial; it transmitted when the post output shows a
spike within `window_s` after it (_synaptic.read_capture); a post spike at any other time in a
capture (before the pre spike, or later than the window: the synapse switching by itself, which
near the top of its range it does) is counted as spontaneous, and whether the synapse wire switched (seen at the weight port) apart.
Per weight: the transfer probability
over trials (Wilson interval) and the delay pre spike to post spike over the transmitting trials
(mean, Student t interval). A weight at which the pre-neuron never fired has no trials: its
probability is NaN, said in `weights_without_trials`.

This is the synapse's weight curve as a lab reads it: the control current at which the synapse
takes effect (`weight_onset_a`, where the probability gets halfway between its values at the
lowest and the highest weight) and how the delay shortens as the released current grows. With
`weight_off` the sweep starts at 0 A, the synapse off. On an inhibitory synapse the post-neuron
needs an input of its own (a station splitting the pre's input to it through a longer cable:
stations/emulated-synapse-inhibitory.yaml): with the synapse off it fires on that input, and the
probability falling with the weight is its suppression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contracts import steps
from contracts.procedure import PlanContext, Procedure, parameter, refuse, too_little
from contracts.records import Axis, ColumnSpec, Result, TableRows, TableSpec, Uncertainty
from contracts.units import format_si
from procedures import _pulsed, _synaptic
from procedures.analysis.statistics import (
    CONFIDENCE_LEVEL, mean_uncertainty, proportion_uncertainty, summarize,
)

TRANSFER_TABLE = "transfer"
TRANSFER_COLUMNS = {"weight_a": ColumnSpec("A"), "trials": ColumnSpec("1", "i8"),
                    "transmitted": ColumnSpec("1", "i8"), "probability": ColumnSpec("1"),
                    "spontaneous": ColumnSpec("1", "i8"), "weight_port_v": ColumnSpec("V"),
                    "switched": ColumnSpec("1", "i8"), "delay_s": ColumnSpec("s"), "delay_std_s": ColumnSpec("s")}
#: Default weight range, in design weights: the shipped excitatory synapse transmits from 0.95x
#: (18.0 uA of 19) and switches by itself near 1.05x (chip notes).
WEIGHT_MIN_DESIGN, WEIGHT_MAX_DESIGN = 0.90, 1.02


@dataclass(frozen=True)
class SynapticTransferParameters(_synaptic.SynapticParameters):
    weight_min_a: float = parameter(0.0, unit="A", doc=f"lowest weight (control) current; 0 takes "
                                    f"{WEIGHT_MIN_DESIGN:g} x the design weight", minimum=0.0)
    weight_max_a: float = parameter(0.0, unit="A", doc=f"highest weight current; 0 takes {WEIGHT_MAX_DESIGN:g} x "
                                    "the design weight", minimum=0.0)
    weight_points: int = parameter(7, unit="1", doc="weights measured", minimum=1, maximum=200)
    weight_off: int = parameter(1, unit="1", doc="1: first measure with the weight source at 0 A, the synapse off "
                                "(an excitatory synapse then transmits nothing; the post-neuron of an inhibitory one "
                                "fires on its own input: what its suppression is measured against)",
                                minimum=0, maximum=1)
    captures: int = parameter(16, unit="1", doc="captures at the firing amplitude per weight", minimum=1,
                              maximum=10_000)
    reference_captures: int = _pulsed.reference_captures_parameter(4, "sub-threshold captures per weight")


class SynapticTransfer(Procedure):
    name = "synaptic_transfer"
    minimum_valid_data = "at least one weight at which the pre-neuron fired (a trial)"
    Parameters = SynapticTransferParameters

    def check_parameters(self) -> None:
        p = self.parameters
        _pulsed.check_timing(self.name, "width_s, edge_s", p.width_s, p.edge_s)
        if p.weight_max_a and p.weight_min_a > p.weight_max_a:
            raise refuse(self.name, "weight_min_a, weight_max_a", f"{p.weight_min_a:.6g} A > {p.weight_max_a:.6g} A")

    def declare(self, context: PlanContext | None = None):
        tables = {TRANSFER_TABLE: TableSpec(TRANSFER_COLUMNS, axis="weight_a", signal="probability")}
        if _pulsed.searches(self.parameters.threshold_a, context.chip_design if context else None):
            tables[_pulsed.QUICK_SEARCH_TABLE] = _pulsed.probability_table()
        return None, tables

    def weights_a(self, synapse: _synaptic.SynapseHints) -> np.ndarray:
        p = self.parameters
        low = p.weight_min_a or WEIGHT_MIN_DESIGN * synapse.weight_a
        high = p.weight_max_a or WEIGHT_MAX_DESIGN * synapse.weight_a
        sweep = np.linspace(low, high, p.weight_points) if p.weight_points > 1 else np.array([high])
        return np.concatenate([[0.0], sweep]) if p.weight_off else sweep

    def plan(self, context: PlanContext):
        p = self.parameters
        run = yield from _synaptic.set_up(self.name, p, context)
        synapse = run.synapse
        weights_a = self.weights_a(synapse)
        context.resolve(weight_min_a=float(weights_a[1 if p.weight_off else 0]), weight_max_a=float(weights_a[-1]))
        yield _pulsed.pulses(run.reference_a, p.width_s, p.edge_s)
        trials, transmitted, delays, spontaneous, port_v, switched = [], [], [], [], [], []
        for index, weight_a in enumerate(weights_a):
            yield steps.SetInputEnabled(enabled=False)      # the weight port is read with nothing else acting
            port_v.append((yield from _synaptic.set_weight(synapse, float(weight_a), p.ramp_a_per_s, self.name,
                                                           dry_run=context.dry_run)))
            yield steps.SetInputEnabled(enabled=True)
            read = yield from capture_set(run, float(weight_a), p)
            pre = [c for c in read if c.pre_spikes > 0]
            trials.append(len(pre))
            transmitted.append(sum(c.post_spiked for c in pre))
            delays.append([c.delay_s for c in pre if c.post_spiked])
            spontaneous.append(sum(c.post_spikes - c.post_spiked for c in read))
            switched.append(sum(c.synapse_switched for c in pre))
            yield steps.Progress(fraction=(index + 1) / len(weights_a),
                                 message=f"weight {format_si(weight_a, 'A', 4)}: {transmitted[-1]} of {trials[-1]} "
                                         "pre spikes transmitted")
        yield from _synaptic.tear_down(synapse, p.ramp_a_per_s)
        amplitude_a = run.amplitude_a
        if not context.dry_run and not any(trials):
            raise too_little(self.name, "a pre spike at one weight at least",
                             f"no pre spike in {p.captures} captures at each of {len(weights_a)} weights at "
                             f"{format_si(amplitude_a, 'A')}")
        for result in transfer_results(weights_a, trials, transmitted, delays, spontaneous, port_v, switched):
            yield steps.Archive(result)
        for name in ("bias_a", "post_bias_a"):
            yield steps.Archive(Result(name, context.resolved[name], "A", exact="setting the run used"))
        yield steps.Archive(Result("amplitude_a", amplitude_a, "A", exact="setting the run used"))


def capture_set(run: _synaptic.SetUp, weight_a: float, p):
    """References, then captures at the firing amplitude, each read (_synaptic.read_capture)."""
    settings, synapse = run.settings, run.synapse
    yield _pulsed.pulses(run.reference_a, p.width_s, p.edge_s)
    yield settings.configure(run.reference_a)
    found = yield from _pulsed.captures(settings.pre, p.reference_captures)
    reference = _synaptic.mean_reference(settings, run.reference_a, found, weight_a, synapse.weight_sign)
    yield _pulsed.pulses(run.amplitude_a, p.width_s, p.edge_s)
    yield settings.configure(run.amplitude_a)
    read: list[_synaptic.SynapticCapture] = []

    def on_capture(traces):
        read.append(_synaptic.read_capture(traces, settings, reference, run.amplitude_a, run.detect_v, p.window_s,
                                           weight_a, synapse.weight_sign,
                                           _synaptic.POST_AREA_FRACTION * synapse.post_spike_area_vs,
                                           _synaptic.SWITCH_AREA_FRACTION * synapse.switch_area_vs))
        return ()

    yield from _pulsed.captures(settings.pre, p.captures, on_capture, keep=False)
    return read


def transfer_results(weights_a, trials, transmitted, delays, spontaneous, port_v, switched,
                     level: float = CONFIDENCE_LEVEL) -> list:
    weights_a = np.asarray(weights_a, dtype=float)
    trials_n, sent = np.asarray(trials, dtype=np.int64), np.asarray(transmitted, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        probability = np.where(trials_n > 0, sent / np.maximum(trials_n, 1), np.nan)
    wilson = proportion_uncertainty(sent, np.maximum(trials_n, 1), level)
    low = np.where(trials_n > 0, wilson.low, np.nan)
    high = np.where(trials_n > 0, wilson.high, np.nan)
    onset = onset_a(weights_a, probability)
    stats = [summarize(d) for d in delays]
    delay_s = np.array([s.mean for s in stats])
    delay_u = [mean_uncertainty(s, level) for s in stats]
    axis = Axis("weight_a", weights_a, "A")
    results = [
        Result("transfer_probability", probability, "1", axis=axis,
               uncertainty=Uncertainty(f"{wilson.method}, over the captures with a pre spike", level, low, high)),
        Result("transfer_delay_s", delay_s, "s", axis=axis, uncertainty=Uncertainty(
            "Student t interval on the mean delay, pre spike peak to post spike peak, over each weight's "
            "transmitting captures (n = transmitted; none with fewer than 2)", level,
            [float(u.low) for u in delay_u], [float(u.high) for u in delay_u])),
        Result("trials", trials_n, "1", axis=axis),
        Result("transmitted", sent, "1", axis=axis),
        Result("synapse_switched", np.asarray(switched, dtype=np.int64), "1", axis=axis),
        Result("spontaneous_post_spikes", np.asarray(spontaneous, dtype=np.int64), "1", axis=axis),
        Result("weight_port_v", np.asarray(port_v, dtype=float), "V", axis=axis,
               exact="one reading of the weight source per weight"),
        Result("weights_without_trials", int(np.sum(trials_n == 0)), "1"),
        Result("weight_onset_a", onset, "A",
               uncertainty=onset_uncertainty(weights_a, trials_n, sent, onset, level)),
    ]
    results.append(TableRows(TRANSFER_TABLE, {
        "weight_a": (weights_a, "A"), "trials": (trials_n, "1"), "transmitted": (sent, "1"),
        "spontaneous": (np.asarray(spontaneous, dtype=np.int64), "1"), "weight_port_v": (np.asarray(port_v, float), "V"),
        "switched": (np.asarray(switched, dtype=np.int64), "1"),
        "probability": (probability, "1"), "delay_s": (delay_s, "s"),
        "delay_std_s": (np.array([s.std for s in stats]), "s")}))
    return results


#: Draws behind the weight onset's interval, and their fixed seed (the interval is a function of
#: the counts alone: the same data give the same interval).
ONSET_DRAWS, ONSET_SEED = 2000, 20261205


def onset_uncertainty(weights_a, trials, transmitted, onset: float, level: float) -> Uncertainty:
    """Equal-tailed interval of the weight onset over draws of the transfer curve: each weight's
    probability drawn from its Jeffreys posterior Beta(k + ½, n − k + ½) (k of n trials
    transmitted), and in each draw the crossing of the halfway level placed uniformly within the
    two measured weights around it (between them the curve is not measured: a transition
    sharper than the spacing is located only to within it). NaN bounds when the counts give no
    `onset` (onset_a of the observed fractions). (Resampling the counts at the observed
    fractions would hold a weight at 0 of 3 at 0 in every draw, and give an interval of zero
    width.)"""
    weights_a = np.asarray(weights_a, dtype=float)
    trials = np.asarray(trials, dtype=np.int64)
    sent = np.asarray(transmitted, dtype=np.int64)
    method = (f"equal-tailed interval over {ONSET_DRAWS} draws: each weight's transfer probability from its "
              "Jeffreys posterior Beta(k + 1/2, n - k + 1/2), the halfway crossing (from the lowest weight's "
              "probability to the highest's) placed uniformly between the two measured weights around it")
    if math.isnan(onset):
        return Uncertainty(method, level, math.nan, math.nan)
    rng = np.random.default_rng(ONSET_SEED)
    probabilities = np.where(trials > 0, rng.beta(sent + 0.5, trials - sent + 0.5, size=(ONSET_DRAWS, trials.size)),
                             np.nan)
    placed = rng.uniform(size=ONSET_DRAWS)
    onsets = np.array([_crossing(weights_a, row, u) for row, u in zip(probabilities, placed)])
    located = onsets[np.isfinite(onsets)]
    if located.size < level * ONSET_DRAWS:
        return Uncertainty(method + f"; {ONSET_DRAWS - located.size} draws without an onset", level, math.nan,
                           math.nan)
    low, high = np.quantile(located, [(1 - level) / 2, (1 + level) / 2])
    return Uncertainty(method, level, float(low), float(high), float(np.std(located, ddof=1)))


def onset_a(weights_a: np.ndarray, probability: np.ndarray) -> float:
    """The weight where the probability first gets halfway from its value at the lowest weight
    to its value at the highest (rising for an excitatory synapse, falling for an inhibitory one),
    linearly between the two weights around it; NaN when it does not change."""
    return _crossing(weights_a, probability, None)


def _crossing(weights_a: np.ndarray, probability: np.ndarray, placed: float | None) -> float:
    """onset_a, or with `placed` in [0, 1) the point that fraction of the way between the two
    weights around the crossing."""
    finite = np.isfinite(probability)
    w, prob = weights_a[finite], probability[finite]
    if w.size < 2 or prob[0] == prob[-1]:
        return math.nan
    half = (prob[0] + prob[-1]) / 2
    past = np.flatnonzero((prob - half) * np.sign(prob[-1] - prob[0]) >= 0)
    i = int(past[0])
    if i == 0:
        return float(w[0])
    fraction = (half - prob[i - 1]) / (prob[i] - prob[i - 1]) if placed is None else placed
    return float(w[i - 1] + fraction * (w[i] - w[i - 1]))
