"""What the synaptic procedures share: the synapse as the chip file describes it, their captures
(the pre-neuron's output, the post-neuron's output and the weight port, with the input monitor),
and how one capture is read: the pre spike, the post spike after it, and the energy the weight
source delivered.

A capture is read against the mean of sub-threshold reference captures (the pre input at a
fraction of its threshold: no pre spike, so no synaptic event): at each node the excess over
the reference scaled to the capture's amplitude is what the linear response does not explain
(analysis.spikes). The weight source's energy over the record is I_w · ∫V dt at the weight
port's node, signed by the port's orientation in the chip file; the reference's, scaled by
A/A0 (linear in the input, as the bias term of energy_per_spike), is its baseline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from contracts import steps
from contracts.files.chip import GROUND, synapse_of
from contracts.procedure import MeasurementError, PlanContext, parameter, refuse
from procedures import _pulsed
from procedures.analysis.energy import integrate_j
from procedures.analysis.spikes import linear_excess_v, spike_times_s
from procedures.design import DesignHints, quantity, wire_flux_vs

#: Full scale of the weight port's node, in the pre-neuron's spike amplitudes. The synapse wire's
#: switching pulls the node to about -1.5 mV for ~0.2 ns, then the weight current's return leaves
#: a tail of tens of uV over ~100 ns that carries about half of the event's energy: an 8-bit record
#: holds both only when the readout is band-limited (stations/emulated-synapse.yaml: 50 MHz), which
#: keeps the area and spreads the pulse to ~0.1 mV. Captures whose weight node reaches the edge of
#: the range are counted (`weight_node_clipped_captures`): then narrow the readout's bandwidth or
#: widen this range.
WEIGHT_NODE_RANGE_SPIKES = 1.0
#: A weight-node sample this many LSB (of 256 across the full scale) from 0 counts as clipped.
CLIPPED_LSB = 126.5
#: A post spike's area when the chip file does not give its main wire (20 uA x 20 nH, as the
#: default neuron's).
FALLBACK_SPIKE_AREA_VS = 0.4e-12
#: A post spike is an excess area at its output node above this fraction of post_spike_area_vs:
#: spikes measured 0.34-0.42 pV·s and the synaptic current alone 0.03 pV·s (of 0.4) on the
#: excitatory pair at 2 K, while their peaks (0.32-0.37 against 0.26 mV) nearly overlap.
POST_AREA_FRACTION = 0.4
#: A synaptic event is a weight-node area above this fraction of the synapse wire's I_sw x L:
#: events measured 0.27-0.34 pV·s (5.2-6.5 aJ at 19 uA) and pre spikes that did not switch the
#: synapse 0.005-0.03 pV·s (0.1-0.6 aJ), of 0.2 pV·s, on the excitatory pair at 2 K.
SWITCH_AREA_FRACTION = 0.4
#: A pre spike's peak is looked for this long after its rising crossing.
PEAK_SEARCH_S = 1e-9
#: A weight port reading above this is a synapse wire held resistive, not a superconducting port.
WEIGHT_PORT_RESISTIVE_V = 100e-6


@dataclass(frozen=True)
class SynapseHints:
    """The chip file's first synapse: its weight port, the node the weight source drives and the
    sign of the power it delivers there, the design weight, and the post-neuron's output node,
    bias port and design bias."""
    weight_port: str
    weight_node: str
    weight_sign: float           # power delivered = weight_sign * I_w * V(weight_node)
    weight_a: float              # design weight (control) current
    post_output_node: str
    post_bias_port: str | None
    post_bias_a: float
    #: ∫V dt a post spike puts on its output node (its main wire's I_sw x L); the synaptic
    #: current alone, an inductive response, reaches ~1/10 of it on the shipped chips.
    post_spike_area_vs: float = math.nan
    #: ∫V dt the synapse wire's switching puts on the weight node (its I_sw x L): what tells a
    #: synaptic event from a pre spike that did not switch the synapse.
    switch_area_vs: float = math.nan

    @classmethod
    def from_chip(cls, design: Mapping[str, Any] | None, procedure: str) -> SynapseHints:
        """Refuses (one line, naming the procedure) a chip without a synapse driven by a port."""
        d = design or {}
        elements = {str(e.get("name")): e for e in d.get("elements") or () if isinstance(e, Mapping)}
        ports = {str(p): str((spec or {}).get("source")) for p, spec in (d.get("ports") or {}).items()}
        weight = next(((port, source) for port, source in ports.items() if synapse_of(source)), None)
        if weight is None:
            raise refuse(procedure, "chip", "the station's chip has no synapse driven by a port (elements named "
                                            "syn_* with a current source on a port: docs/chip-files.md, 'Synapses')")
        port, source = weight
        nodes = [str(n) for n in elements[source].get("nodes", ())]
        node = next(n for n in nodes if n != GROUND)
        outputs = {str(k): str((v or {}).get("node")) for k, v in (d.get("outputs") or {}).items()}
        post_node = next((node_ for name, node_ in outputs.items() if "_post" in name), None)
        if post_node is None:
            raise refuse(procedure, "chip", "the chip names no post-neuron output (an output named *_post)")
        post_bias = next((p for p in ports if p.startswith("bias") and p != "bias"), None)
        return cls(
            weight_port=port, weight_node=node,
            # A current source's current enters its first node (the chip file's convention).
            weight_sign=1.0 if nodes[0] == node else -1.0,
            weight_a=_source_current_a(elements[source]),
            post_output_node=post_node, post_bias_port=post_bias,
            post_bias_a=_source_current_a(elements[ports[post_bias]]) if post_bias else 0.0,
            post_spike_area_vs=wire_flux_vs(d, node=post_node) or FALLBACK_SPIKE_AREA_VS,
            switch_area_vs=_synapse_wire_flux_vs(d, synapse_of(source)))


def _synapse_wire_flux_vs(design: Mapping[str, Any], synapse: str | None) -> float:
    """I_sw x L of the synapse's (first) nanowire, else the default neuron's main wire's."""
    wire = next((str(e.get("name")) for e in design.get("elements") or ()
                 if isinstance(e, Mapping) and e.get("type") == "nanowire" and synapse_of(str(e.get("name"))) == synapse),
                None)
    return (wire_flux_vs(design, name=wire) if wire else None) or FALLBACK_SPIKE_AREA_VS


def _source_current_a(element: Mapping[str, Any]) -> float:
    value = quantity(element.get("current"))
    return float(value) if value is not None else math.nan


@dataclass(frozen=True)
class SynapticCaptureSettings:
    """One capture of the pre input: the pre output, the post output and the weight port."""
    pre: _pulsed.CaptureSettings
    post_node: str
    weight_node: str
    weight_range_v: float

    @classmethod
    def for_design(cls, design: DesignHints, synapse: SynapseHints, record_s: float, pretrigger_s: float,
                   sample_rate_hz: float) -> SynapticCaptureSettings:
        pre = _pulsed.CaptureSettings.for_design(design, record_s, pretrigger_s, sample_rate_hz=sample_rate_hz)
        return cls(pre, synapse.post_output_node, synapse.weight_node,
                   WEIGHT_NODE_RANGE_SPIKES * design.spike_amplitude_v)

    def configure(self, amplitude_a: float) -> steps.ConfigureCapture:
        p = self.pre
        return steps.ConfigureCapture(
            node_ranges_v={p.output_node: p.output_range_v, self.post_node: p.output_range_v,
                           self.weight_node: self.weight_range_v},
            input_range_a=_pulsed.input_range_a(amplitude_a), record_length=p.record_length,
            sample_rate_hz=p.sample_rate_hz, pretrigger_s=p.pretrigger_s)


@dataclass(frozen=True)
class Reference:
    """Mean sub-threshold response at each recorded node, and the weight energy it cost."""
    amplitude_a: float
    node_v: Mapping[str, np.ndarray]
    weight_energy_j: float
    count: int


def mean_reference(settings: SynapticCaptureSettings, amplitude_a: float, traces: list,
                   weight_a: float, sign: float) -> Reference:
    nodes = (settings.pre.output_node, settings.post_node, settings.weight_node)
    if not traces:
        return Reference(amplitude_a, {}, 0.0, 0)
    mean = {n: np.mean([np.asarray(t.node_voltage_v[n], float) for t in traces], axis=0) for n in nodes}
    energy = float(np.mean([weight_energy_j(t, settings, weight_a, sign) for t in traces]))
    return Reference(amplitude_a, mean, energy, len(traces))


def weight_energy_j(traces: steps.ChipTraces, settings: SynapticCaptureSettings, weight_a: float,
                    sign: float) -> float:
    """What the weight source delivered over the record: sign · I_w · ∫V(weight node) dt."""
    return sign * weight_a * integrate_j(traces.time_s, np.asarray(traces.node_voltage_v[settings.weight_node]))


@dataclass(frozen=True)
class SynapticCapture:
    """One capture read: the pre spikes, the first one's time, the post spike after it (within
    the window) and the weight source's energy above the scaled baseline."""
    pre_spikes: int
    pre_time_s: float             # NaN without a pre spike
    post_spiked: bool             # a post spike within the window after the first pre spike
    synapse_switched: bool        # the weight node shows the synapse wire's switching after it
    post_spikes: int              # every post spike in the record (the others: not caused by this pre spike)
    delay_s: float                # post spike - pre spike (NaN unless post_spiked)
    weight_energy_j: float        # delivered over the record
    event_energy_j: float         # above the reference scaled to this amplitude
    weight_node_clipped: bool = False   # the weight node's trace reached the edge of its range


def read_capture(traces: steps.ChipTraces, settings: SynapticCaptureSettings, reference: Reference,
                 amplitude_a: float, detect_v: float, window_s: float, weight_a: float,
                 sign: float, post_area_vs: float, switch_area_vs: float) -> SynapticCapture:
    """The pre spikes are rising crossings of detect_v by the pre output's excess over the scaled
    reference; the first one's time is its peak. The post-neuron spiked after it when its
    output's excess area within `window_s` exceeds `post_area_vs` (the synaptic current alone
    puts a sharp inductive peak there, about as high as a spike but with a tenth of its area);
    the delay runs from the pre's peak to the post's highest excess in the window. Elsewhere in
    the record, each stretch of `window_s` whose excess area exceeds post_area_vs is one post
    spike the pre spike did not cause (spontaneous). The synapse switched when the weight node's
    area after the pre spike, signed as the source's power, exceeds `switch_area_vs`. An excess area above post_area_vs anywhere else in the
    record counts one spontaneous post spike."""
    scale = amplitude_a / reference.amplitude_a if reference.amplitude_a else 0.0
    time_s = np.asarray(traces.time_s, dtype=float)

    def excess_at(node: str) -> np.ndarray:
        voltage_v = np.asarray(traces.node_voltage_v[node], dtype=float)
        ref = reference.node_v.get(node)
        return linear_excess_v(voltage_v, ref if ref is not None and ref.shape == voltage_v.shape else None, scale)

    pre_v = excess_at(settings.pre.output_node)
    pre = spike_times_s(time_s, pre_v, detect_v)
    post_v = excess_at(settings.post_node)
    # Spike times at each spike's peak: the post output's first crossing would be the synaptic
    # current's inductive kick, which comes before the post's wire switches.
    pre_s = _peak_time_s(time_s, pre_v, float(pre[0]), float(pre[0]) + PEAK_SEARCH_S) if pre.size else math.nan
    inside = (time_s >= pre_s) & (time_s <= pre_s + window_s) if pre.size else np.zeros(time_s.size, bool)
    post_spiked = bool(pre.size) and _area_vs(time_s[inside], post_v[inside]) > post_area_vs
    delay_s = _peak_time_s(time_s, post_v, pre_s, pre_s + window_s) - pre_s if post_spiked else math.nan
    # Elsewhere, in stretches as long as the window: each whose area is a spike's is one more.
    starts = np.arange(time_s[0], time_s[-1], window_s)
    outside = sum(_area_vs(time_s[m], post_v[m]) > post_area_vs for m in
                  ((time_s >= t) & (time_s < t + window_s) & ~inside for t in starts))
    energy_j = weight_energy_j(traces, settings, weight_a, sign)
    weight_v = np.asarray(traces.node_voltage_v[settings.weight_node], dtype=float)
    # The switching pulls the weight node the way the source's power is positive (sign), and the
    # weight current's return keeps it there for ~100 ns: its area from the pre spike to the end
    # of the record (within the window alone it is small when the post fires and pushes current
    # back). Read raw: the input's own share is a few % of it, and a reference that caught the
    # tail of a weight change would only blur it.
    after_pre = time_s >= pre_s if pre.size else np.zeros(time_s.size, bool)
    switched = bool(pre.size) and sign * _area_vs(time_s[after_pre], weight_v[after_pre]) > switch_area_vs
    edge_v = (CLIPPED_LSB / 256) * settings.weight_range_v
    clipped = bool(np.any(np.abs(np.asarray(traces.node_voltage_v[settings.weight_node], dtype=float)) >= edge_v))
    return SynapticCapture(int(pre.size), pre_s, post_spiked, switched, int(post_spiked) + int(outside),
                           delay_s, energy_j, energy_j - scale * reference.weight_energy_j, clipped)


def _peak_time_s(time_s: np.ndarray, voltage_v: np.ndarray, start_s: float, stop_s: float) -> float:
    """Time of the largest sample in [start_s, stop_s]."""
    inside = np.flatnonzero((time_s >= start_s) & (time_s <= stop_s))
    return float(time_s[inside[np.argmax(voltage_v[inside])]]) if inside.size else math.nan


def _area_vs(time_s: np.ndarray, voltage_v: np.ndarray) -> float:
    """Trapezoidal ∫V dt (0 for fewer than two samples)."""
    return float(np.trapezoid(voltage_v, time_s)) if time_s.size > 1 else 0.0


def set_weight(synapse: SynapseHints, weight_a: float, ramp_a_per_s: float, procedure: str, *, dry_run: bool):
    """Ramp the weight source to weight_a, then read its port (the input off: nothing else acts):
    a superconducting synapse reads ~0 V; one whose wire is held resistive fails the run here,
    before any capture. Returns the reading (V)."""
    yield steps.SetBias(current_a=weight_a, ramp_a_per_s=ramp_a_per_s, port=synapse.weight_port)
    port_v = yield steps.MeasureBiasVoltage(port=synapse.weight_port)
    if not dry_run and abs(port_v) > WEIGHT_PORT_RESISTIVE_V:
        raise MeasurementError(f"{procedure}: the weight port reads {port_v * 1e3:.4g} mV at {weight_a * 1e6:.4g} uA: "
                               f"the synapse wire is resistive (latched, or the weight is above its switching "
                               f"current at this temperature); lower the weight or the stage temperature")
    return float(port_v)


# -- what both synaptic procedures share: parameters, the set-up and the way back --------------

#: The 8-channel Infiniium MXR's top sample rate (the synapse stations' scope).
SAMPLE_RATE_HZ = 16e9


def post_bias_a_parameter() -> Any:
    return parameter(0.0, unit="A", doc="post-neuron bias; 0 takes the design's", minimum=0.0)


def window_s_parameter() -> Any:
    return parameter(10e-9, unit="s", doc="a post spike this long after the pre spike counts as transmitted",
                     minimum=1e-11)


def record_after_s_parameter() -> Any:
    return parameter(150e-9, unit="s", doc="record (and integrate) this long after the pulse: the synapse's weight "
                     "current returns with L/R ~ 40 ns, and a record of ~4 of them ends with the synapse as it "
                     "found it", minimum=1e-9)


@dataclass(frozen=True)
class SynapticParameters:
    """The parameters both synaptic procedures take (each adds its own after these)."""
    threshold_a: float = _pulsed.threshold_a_parameter()
    threshold_factor: float = _pulsed.threshold_factor_parameter(1.3)
    reference_fraction: float = parameter(0.5, unit="1", doc="reference amplitude in pre thresholds (no spike)",
                                          minimum=0.05, maximum=0.9)
    width_s: float = _pulsed.width_s_parameter("pre input pulse width")
    edge_s: float = _pulsed.edge_s_parameter()
    post_bias_a: float = post_bias_a_parameter()
    window_s: float = window_s_parameter()
    record_after_s: float = record_after_s_parameter()
    pretrigger_s: float = _pulsed.pretrigger_s_parameter(5e-9)
    sample_rate_hz: float = _pulsed.sample_rate_hz_parameter(SAMPLE_RATE_HZ)
    bias_a: float = _pulsed.bias_a_parameter("pre-neuron bias; 0 takes the design bias")
    detect_v: float = _pulsed.detect_v_parameter()
    ramp_a_per_s: float = _pulsed.ramp_a_per_s_parameter()


@dataclass(frozen=True)
class SetUp:
    """What a synaptic plan measures with, once the neurons are biased and the threshold known."""
    design: DesignHints
    synapse: SynapseHints
    settings: SynapticCaptureSettings
    detect_v: float
    amplitude_a: float
    reference_a: float


def set_up(procedure: str, p: Any, context: PlanContext):
    """Bias the pre-neuron, find its threshold (_pulsed.threshold_for), bias the post-neuron; the
    input is left off. Returns SetUp."""
    design = DesignHints.from_chip(context.chip_design)
    synapse = SynapseHints.from_chip(context.chip_design, procedure)
    settings = SynapticCaptureSettings.for_design(
        design, synapse, p.pretrigger_s + p.width_s + 2 * p.edge_s + p.record_after_s, p.pretrigger_s,
        p.sample_rate_hz)
    detect_v = p.detect_v or 0.3 * design.spike_amplitude_v
    bias_a, post_bias_a = p.bias_a or design.bias_a, p.post_bias_a or synapse.post_bias_a
    context.resolve(bias_a=bias_a, post_bias_a=post_bias_a, detect_v=detect_v)
    yield steps.SetBias(current_a=bias_a, ramp_a_per_s=p.ramp_a_per_s)
    threshold = yield from _pulsed.threshold_for(
        procedure, p.threshold_a, context.chip_design, design, settings.pre, p.width_s, p.edge_s, detect_v,
        _pulsed.SPIKE_AFTER_S, lambda *capture: (), dry_run=context.dry_run)
    context.resolve(threshold_a=threshold.value_a)
    if synapse.post_bias_port is not None:
        yield steps.SetBias(current_a=post_bias_a, ramp_a_per_s=p.ramp_a_per_s, port=synapse.post_bias_port)
    return SetUp(design, synapse, settings, detect_v, p.threshold_factor * threshold.value_a,
                 p.reference_fraction * threshold.value_a)


def tear_down(synapse: SynapseHints, ramp_a_per_s: float):
    """Input off, then the weight, the post-neuron's bias and the pre-neuron's to 0 A."""
    yield steps.SetInputEnabled(enabled=False)
    yield steps.SetBias(current_a=0.0, ramp_a_per_s=ramp_a_per_s, port=synapse.weight_port)
    if synapse.post_bias_port is not None:
        yield steps.SetBias(current_a=0.0, ramp_a_per_s=ramp_a_per_s, port=synapse.post_bias_port)
    yield steps.SetBias(current_a=0.0, ramp_a_per_s=ramp_a_per_s)
