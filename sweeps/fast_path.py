"""The fast path: one design point's metrics from direct simulation of its chip file, measured
the way the procedures measure them and with their analysis code.

Each simulation starts from the chip's biased DC state with the point's own seed (the same
switching-threshold draws for every trial of the point: one chip, probed again and again, so
that its response to a rising amplitude is monotone and a bisection is valid). What counts as a
spike is what the procedures count (procedures.analysis.spikes): the output node's excess over
the sub-threshold response scaled to the amplitude, above 0.3x the design spike amplitude,
inside the window after the pulse. The trials of each bisection go to the probit fit the
refractory procedure uses (procedures.analysis.recovery), which gives the threshold or the
refractory period with its interval; energies come from procedures.analysis.energy, rheobase
and chronaxie from procedures.analysis.strength_duration. Amplitude factors are the procedures'
default parameters (energy_per_spike, refractory), read from their parameter classes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from procedures._pulsed import (
    BRACKET_HIGH_THRESHOLDS,
    BRACKET_LOW_THRESHOLDS,
    SPIKE_AFTER_S,
)
from procedures.analysis.energy import port_energy, spike_energy_j
from procedures.analysis.rate import gain_fit
from procedures.analysis.recovery import fit_recovery
from procedures.analysis.spikes import (
    delayed,
    has_spike,
    linear_excess_v,
    peak_count,
    spike_times_s,
)
from procedures.analysis.statistics import proportion_uncertainty
from procedures.analysis.strength_duration import fit_weiss
from procedures.design import DesignHints
from procedures.energy_per_spike import EnergyPerSpikeParameters
from procedures.refractory import RefractoryParameters
from sim_backend.chip.build import parse_chip
from sim_backend.chip.loads import wiring_loads
from sim_backend.chip.synapse import synaptic_energy_j
from sim_backend.physics.circuit import Circuit
from sim_backend.physics.dc import dc_state
from sim_backend.physics.transient import simulate
from sim_backend.physics.waveform import PiecewiseLinear
from sweeps.spec import FI_METRICS, NEEDS_THRESHOLD, POST_OUTPUT, SYNAPTIC_METRICS

#: Detection level in design spike amplitudes (the procedures' detect_v default).
DETECT_SPIKE_AMPLITUDES = 0.3
#: Amplitude factors and baseline fractions: the procedures' defaults.
ENERGY_FACTOR = EnergyPerSpikeParameters().threshold_factor
ENERGY_REFERENCE_FRACTION = EnergyPerSpikeParameters().reference_fraction
REFRACTORY_FACTOR = RefractoryParameters().threshold_factor
#: A bisection's bracket may be extended downwards this many times (halving) when its low end fires.
EXTENSIONS_MAX = 4
#: f–I: the DC input's range in design thresholds and its spike level in design spike amplitudes
#: (the firing_rate procedure's defaults).
FI_CURRENT_MIN_THRESHOLDS, FI_CURRENT_MAX_THRESHOLDS, FI_DETECT_SPIKE_AMPLITUDES = 0.2, 1.5, 0.5
#: The last stretch of the latch check's record in which activity means the design latched.
LATCH_TAIL_S = 10e-9
LEVEL = 0.95


class ChipProbe:
    """Pulses into one design point's chip; spikes out, seen as the procedures see them."""

    def __init__(self, tree: Mapping[str, Any], chip_path, stimulus: Mapping[str, Any], seed: int,
                 pulse_inputs=(), readouts=()):
        chip = parse_chip(dict(tree), chip_path)
        loads = wiring_loads(chip, pulse_inputs, readouts)     # a station's wiring, as the bench adds it
        self.chip = replace(chip, circuit=Circuit(chip.circuit.elements + loads)) if loads else chip
        self.design = DesignHints.from_chip(tree)
        self.stimulus = stimulus
        self.seed = seed
        self.temperature_k = self.chip.temperature_k
        self.input_source = self.chip.ports["input"]
        self.bias_source = self.chip.ports.get("bias")
        self.output_node, self.bias_node = self.design.output_node, self.design.bias_node
        self.detect_v = DETECT_SPIKE_AMPLITUDES * self.design.spike_amplitude_v
        self.initial = dc_state(self.chip.circuit, temperature_k=self.temperature_k)
        self.bias_a = next((e.current_a for e in self.chip.circuit.elements if e.name == self.bias_source), 0.0)
        s = stimulus
        self.rise_s, self.delay_s = s["rise_s"], s["delay_s"]
        self.record_after_s = SPIKE_AFTER_S + 2 * self.rise_s
        longest = s["delay_s"] + max(s["refractory_max_s"], s["energy_after_s"]) + max(s["widths_s"]) \
            + self.record_after_s
        self.grid_s = np.arange(math.ceil(longest / s["sample_interval_s"]) + 1) * s["sample_interval_s"]
        self._references: dict[float, tuple[float, Any]] = {}
        self.simulations = 0

    def run(self, pulses: list[tuple[float, float]], width_s: float, stop_s: float, trial: int = 0):
        """Trapezoids [(amplitude_a, delay_s)] into the input port, sampled on the probe's grid to
        stop_s. `trial` > 0: another draw of the switching thresholds (seeded from the point's)."""
        wave = None
        for amplitude_a, delay_s in pulses:
            p = PiecewiseLinear.pulse(amplitude_a, delay_s=delay_s, width_s=width_s, rise_s=self.rise_s)
            wave = p if wave is None else wave + p
        times = self.grid_s[: int(np.searchsorted(self.grid_s, stop_s, side="right"))]
        self.simulations += 1
        seed = self.seed if trial == 0 else [self.seed, trial]
        return simulate(self.chip.circuit, float(times[-1]), drives={self.input_source: wave}, initial=self.initial,
                        temperature_k=self.temperature_k, rng=np.random.default_rng(seed),
                        sample_times_s=times)

    def reference(self, width_s: float):
        """The sub-threshold response at A0 = the bracket's low end, over the whole grid."""
        if width_s not in self._references:
            a0 = BRACKET_LOW_THRESHOLDS * self.design.threshold_a
            self._references[width_s] = (a0, self.run([(a0, self.delay_s)], width_s, self.grid_s[-1]))
        return self._references[width_s]

    def excess_v(self, result, width_s: float, amplitude_a: float, spacing_s: float | None = None) -> np.ndarray:
        a0, ref = self.reference(width_s)
        n = result.time_s.size
        linear = ref.node_voltage_v[self.output_node][:n]
        if spacing_s is not None:      # a pair: superposition of the response and its delayed copy
            linear = linear + delayed(result.time_s, linear, spacing_s)
        return linear_excess_v(result.node_voltage_v[self.output_node], linear, amplitude_a / a0)

    def window_s(self, start_s: float, width_s: float) -> tuple[float, float]:
        return start_s, start_s + width_s + self.record_after_s

    def dc_spikes(self, current_a: float) -> int:
        """Spikes in the f–I record (fi_record_s after fi_settle_s) with a DC input ramped on in
        rise_s: past the burst a neuron fires when its input comes on, what is left is its rate."""
        s = self.stimulus
        start_s, stop_s = s["fi_settle_s"], s["fi_settle_s"] + s["fi_record_s"]
        times = np.arange(math.ceil(stop_s / s["sample_interval_s"]) + 1) * s["sample_interval_s"]
        self.simulations += 1
        result = simulate(self.chip.circuit, float(times[-1]),
                          drives={self.input_source: PiecewiseLinear(np.array([0.0, self.rise_s]),
                                                                     np.array([0.0, current_a]))},
                          initial=self.initial, temperature_k=self.temperature_k,
                          rng=np.random.default_rng(self.seed), sample_times_s=times)
        spikes = spike_times_s(result.time_s, result.node_voltage_v[self.output_node],
                               FI_DETECT_SPIKE_AMPLITUDES * self.design.spike_amplitude_v)
        return int(np.sum(spikes >= start_s))

    def fires(self, amplitude_a: float, width_s: float) -> bool:
        end = self.delay_s + width_s + self.record_after_s
        result = self.run([(amplitude_a, self.delay_s)], width_s, end)
        return has_spike(result.time_s, self.excess_v(result, width_s, amplitude_a), self.detect_v,
                         self.window_s(self.delay_s, width_s))

    def second_fires(self, amplitude_a: float, width_s: float, spacing_s: float) -> bool:
        second = self.delay_s + spacing_s
        result = self.run([(amplitude_a, self.delay_s), (amplitude_a, second)], width_s,
                          second + width_s + self.record_after_s)
        return has_spike(result.time_s, self.excess_v(result, width_s, amplitude_a, spacing_s), self.detect_v,
                         self.window_s(second, width_s))


def bisect(responds, low: float, high: float, precision: float, floor: float = 0.0,
           extensions: int = EXTENSIONS_MAX):
    """Trials of a bisection for the stimulus where `responds` turns true (rising), until
    high/low − 1 <= precision (or high − low <= floor): lists of stimuli and responses.
    Geometric midpoints (a threshold's scale is what is unknown). A low end that responds is
    halved up to `extensions` times; then the trials are returned as they are."""
    x, y = [], []

    def trial(value: float) -> bool:
        answer = bool(responds(value))
        x.append(value)
        y.append(answer)
        return answer

    if not trial(high):
        return x, y
    for _ in range(extensions + 1):
        if not trial(low):
            break
        high, low = low, low / 2
    else:
        return x, y
    while high / low - 1 > precision and high - low > floor:
        middle = math.sqrt(low * high)
        if trial(middle):
            high = middle
        else:
            low = middle
    return x, y


def probit(x, y) -> tuple[float, float, float]:
    """(midpoint, low, high) of the procedures' probit fit to one-trial responses."""
    fit = fit_recovery(np.asarray(x), np.asarray(y, dtype=float), np.ones(len(x)), level=LEVEL)
    return fit.midpoint, fit.midpoint_low, fit.midpoint_high


def evaluate(probe: ChipProbe, metrics: tuple[str, ...]) -> dict[str, Any]:
    """The requested metrics of one point: scalars, `threshold_a` one per width, and for each
    metric with an interval its `_low`/`_high` bounds (95 %)."""
    s = probe.stimulus
    widths = s["widths_s"]
    first = widths[0]
    out: dict[str, Any] = {}
    design_threshold_a = probe.design.threshold_a
    if "fires" in metrics or "latches" in metrics:
        top_a = BRACKET_HIGH_THRESHOLDS * design_threshold_a
        stop = probe.delay_s + first + 2 * probe.rise_s + s["energy_after_s"]
        result = probe.run([(top_a, probe.delay_s)], first, stop)
        excess = probe.excess_v(result, first, top_a)
        if "fires" in metrics:
            out["fires"] = int(has_spike(result.time_s, excess, probe.detect_v, probe.window_s(probe.delay_s, first)))
        if "latches" in metrics:
            end = float(result.time_s[-1])
            out["latches"] = int(has_spike(result.time_s, excess, probe.detect_v, (end - LATCH_TAIL_S, end)))
    if set(metrics) & set(FI_METRICS):
        out.update(firing_rate(probe))
    if not set(metrics) & set(NEEDS_THRESHOLD):
        return out
    thresholds, lows, highs = [], [], []
    for width_s in widths:
        x, y = bisect(lambda a, w=width_s: probe.fires(a, w), BRACKET_LOW_THRESHOLDS * design_threshold_a,
                      BRACKET_HIGH_THRESHOLDS * design_threshold_a, s["threshold_precision"])
        mid, low, high = probit(x, y)
        thresholds.append(mid)
        lows.append(low)
        highs.append(high)
        if "rheobase_a" not in metrics and "chronaxie_s" not in metrics and "threshold_a" not in metrics:
            break           # only the first width's threshold is needed
    out["threshold_a"] = thresholds + [math.nan] * (len(widths) - len(thresholds))
    out["threshold_a_low"] = lows + [math.nan] * (len(widths) - len(lows))
    out["threshold_a_high"] = highs + [math.nan] * (len(widths) - len(highs))
    if "rheobase_a" in metrics or "chronaxie_s" in metrics:
        # standard uncertainty from the interval's half-width (normal, 95 %)
        sd = [(h - lo) / (2 * 1.959964) if math.isfinite(h - lo) else math.nan for lo, h in zip(lows, highs)]
        fit = fit_weiss(np.asarray(widths), np.asarray(thresholds), np.asarray(sd))
        out["rheobase_a"], out["chronaxie_s"] = fit.rheobase_a, fit.chronaxie_s
    threshold_a = thresholds[0]
    if "energy_per_spike_j" in metrics:
        out.update(energy(probe, threshold_a, first))
    if "refractory_s" in metrics:
        out.update(refractory(probe, threshold_a, first))
    if set(metrics) & set(SYNAPTIC_METRICS):
        out.update(synaptic_transfer(probe, threshold_a, first))
    return out


def synaptic_transfer(probe: ChipProbe, threshold_a: float, width_s: float) -> dict[str, float]:
    """Pre-neuron pulses at ENERGY_FACTOR x its threshold, `transfer_trials` draws of the
    switching thresholds: the share of pre spikes after which every post-neuron fires (with the
    Wilson interval of the procedures' statistics), the mean delay from the pre spike to the
    posts' (spikes as the procedures detect them: rising crossings of detect_v, the pre's on its
    excess over the scaled sub-threshold response, the posts' on their node voltage — no input
    reaches them), and the energy the synapses' elements dissipate per pre spike over the record
    (the simulation's own accounting: a design figure, not a lab measurement)."""
    nan = {"transfer_probability": math.nan, "transfer_probability_low": math.nan,
           "transfer_probability_high": math.nan, "transfer_delay_s": math.nan, "transfer_delay_s_low": math.nan,
           "transfer_delay_s_high": math.nan, "synaptic_energy_j": math.nan,
           "pre_spikes": 0}
    if not math.isfinite(threshold_a):
        return nan
    amplitude_a = ENERGY_FACTOR * threshold_a
    stop = probe.delay_s + width_s + 2 * probe.rise_s + probe.stimulus["energy_after_s"]
    posts = [node for name, node in probe.chip.outputs.items() if POST_OUTPUT.match(name)]
    fired = transmitted = 0
    delays_s, energies_j = [], []
    for trial in range(probe.stimulus["transfer_trials"]):
        result = probe.run([(amplitude_a, probe.delay_s)], width_s, stop, trial=trial)
        pre = spike_times_s(result.time_s, probe.excess_v(result, width_s, amplitude_a), probe.detect_v)
        pre = pre[pre >= probe.delay_s]
        if pre.size == 0:
            continue                     # no pre spike: no synaptic event to transmit
        fired += 1
        energies_j.append(sum(synaptic_energy_j(probe.chip, result.energy.dissipated_j).values()) / pre.size)
        firsts = []
        for node in posts:
            post = spike_times_s(result.time_s, result.node_voltage_v[node], probe.detect_v)
            post = post[post >= pre[0]]
            firsts.append(post[0] if post.size else math.nan)
        if all(math.isfinite(t) for t in firsts):
            transmitted += 1
            delays_s.append(float(np.mean(firsts)) - float(pre[0]))
    if not fired:
        return nan
    share = proportion_uncertainty(transmitted, fired, LEVEL)
    return {"transfer_probability": transmitted / fired, "transfer_probability_low": float(share.low),
            "transfer_probability_high": float(share.high),
            "transfer_delay_s": float(np.mean(delays_s)) if delays_s else math.nan,
            "transfer_delay_s_low": float(np.min(delays_s)) if delays_s else math.nan,
            "transfer_delay_s_high": float(np.max(delays_s)) if delays_s else math.nan,
            "synaptic_energy_j": float(np.mean(energies_j)), "pre_spikes": fired}


def energy(probe: ChipProbe, threshold_a: float, width_s: float) -> dict[str, float]:
    """Energy per spike at ENERGY_FACTOR x threshold against the baseline at
    ENERGY_REFERENCE_FRACTION x threshold (procedures.analysis.energy), and the spikes counted."""
    if not math.isfinite(threshold_a):
        return {"energy_per_spike_j": math.nan, "energy_spikes": -1}
    stop = probe.delay_s + width_s + 2 * probe.rise_s + probe.stimulus["energy_after_s"]
    amplitude_a, reference_a = ENERGY_FACTOR * threshold_a, ENERGY_REFERENCE_FRACTION * threshold_a
    delivered = {}
    for a in (amplitude_a, reference_a):
        result = probe.run([(a, probe.delay_s)], width_s, stop)
        wave = PiecewiseLinear.pulse(a, delay_s=probe.delay_s, width_s=width_s, rise_s=probe.rise_s)
        bias_v = result.node_voltage_v.get(probe.bias_node)
        delivered[a] = (port_energy(result.time_s, result.node_voltage_v[probe.output_node], wave(result.time_s),
                                    bias_v, probe.bias_a), result)
    measured, result = delivered[amplitude_a]
    spikes = peak_count(probe.excess_v(result, width_s, amplitude_a), probe.detect_v)
    e = spike_energy_j(measured, delivered[reference_a][0], amplitude_a, reference_a)
    return {"energy_per_spike_j": e / spikes if spikes > 0 else math.nan, "energy_spikes": spikes}


def refractory(probe: ChipProbe, threshold_a: float, width_s: float) -> dict[str, float]:
    """The spacing at which a second pulse at REFRACTORY_FACTOR x threshold fires again."""
    nan = {"refractory_s": math.nan, "refractory_s_low": math.nan, "refractory_s_high": math.nan}
    if not math.isfinite(threshold_a):
        return nan
    s = probe.stimulus
    amplitude_a = REFRACTORY_FACTOR * threshold_a
    shortest_s = width_s + 2 * probe.rise_s          # the pulses do not overlap
    x, y = bisect(lambda g: probe.second_fires(amplitude_a, width_s, g), shortest_s, s["refractory_max_s"],
                  s["refractory_precision"], floor=s["sample_interval_s"], extensions=0)
    mid, low, high = probit(x, y)
    return {"refractory_s": mid, "refractory_s_low": low, "refractory_s_high": high}


def firing_rate(probe: ChipProbe) -> dict[str, float]:
    """f–I onset (bisection of the DC input at which the neuron keeps firing, with the probit fit
    and interval the firing_rate procedure uses) and gain (least-squares slope of the rate at
    fi_currents currents from the onset to the range's top, procedures.analysis.rate)."""
    s = probe.stimulus
    design_threshold_a = probe.design.threshold_a
    low_a, high_a = FI_CURRENT_MIN_THRESHOLDS * design_threshold_a, FI_CURRENT_MAX_THRESHOLDS * design_threshold_a
    counts: dict[float, int] = {}

    def keeps_firing(current_a: float) -> bool:
        counts[current_a] = probe.dc_spikes(current_a)
        return counts[current_a] > 0

    x, y = bisect(keeps_firing, low_a, high_a, s["threshold_precision"], extensions=0)
    onset, onset_low, onset_high = probit(x, y)
    out = {"fi_onset_a": onset, "fi_onset_a_low": onset_low, "fi_onset_a_high": onset_high,
           "fi_gain_hz_per_a": math.nan}
    if not math.isfinite(onset_high) or onset_high >= high_a:
        return out
    currents = np.linspace(onset_high, high_a, s["fi_currents"])
    spikes = [[counts[c] if c in counts else probe.dc_spikes(float(c))] for c in currents]
    firing = [k for k, n in enumerate(spikes) if n[0] > 0]
    if len(firing) >= 2:
        gain = gain_fit(currents[firing], [spikes[k] for k in firing], [[s["fi_record_s"]]] * len(firing))
        out["fi_gain_hz_per_a"] = gain.slope_hz_per_a
    return out
