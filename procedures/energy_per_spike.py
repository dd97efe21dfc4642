"""Energy per spike from captured traces, against the sub-threshold baseline.

For every capture, E = ∫ (V_m·I_in + V_c·I_bias) dt over the window: V_m and I_in from the
scope (node m, input monitor), V_c from the scope (node c) and I_bias the DC bias this plan set
(analysis.energy). The sub-threshold baseline comes from `reference_captures` captures at
A₀ = reference_fraction × threshold: by linearity it is (A/A₀)²·E_in(A₀) + (A/A₀)·E_bias(A₀)
at amplitude A. Each spiking capture's energy minus that baseline is one spike's energy; the
result is their mean with its spread. Captures without a spike (excess over the scaled
reference below detect_v) are archived but not averaged. What this measures is the energy the
sources deliver over the window; when the chip is back in its starting state at the end of
the window, that is the energy dissipated per spike.

Without a threshold (threshold_a 0, none documented in the chip file) the run first searches
for it at width_s (_pulsed.threshold_for: a quick bisection, archived as the table
`threshold_search`, its captures as kind 2, and the results `threshold_a`, `threshold_source`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from contracts import steps
from contracts.procedure import PlanContext, Procedure, parameter, too_little
from contracts.records import ColumnSpec, Result, TableRows, TableSpec
from procedures import _pulsed
from procedures.analysis.energy import PortEnergy, baseline_j, port_energy
from procedures.analysis.spikes import linear_excess_v, spike_times_s
from procedures.analysis.statistics import summarize
from procedures.design import DesignHints

KIND_REFERENCE, KIND_SPIKE, KIND_SEARCH = 0, 1, 2
#: What is archived with each capture's traces (_pulsed.CaptureRecords: nodes m and c in volts,
#: the input current in amperes): every capture, reference, spiking and of a threshold search
#: (its energies NaN: not measured), is archived.
TRACE_COLUMNS = {"kind": ColumnSpec("1", "i1"), "amplitude_a": ColumnSpec("A"), "bias_a": ColumnSpec("A"),
                 "spikes": ColumnSpec("1", "i8"), "input_energy_j": ColumnSpec("J"),
                 "bias_energy_j": ColumnSpec("J"), "spike_energy_j": ColumnSpec("J"),
                 "attempt": ColumnSpec("1", "i8")}


@dataclass(frozen=True)
class EnergyPerSpikeParameters:
    threshold_a: float = _pulsed.threshold_a_parameter()
    threshold_factor: float = _pulsed.threshold_factor_parameter(1.3)
    reference_fraction: float = parameter(0.5, unit="1", doc="baseline amplitude A0 in thresholds",
                                          minimum=0.05, maximum=0.9)
    width_s: float = _pulsed.width_s_parameter("input pulse width")
    edge_s: float = _pulsed.edge_s_parameter()
    spikes: int = parameter(40, unit="1", doc="captures at the spiking amplitude", minimum=1, maximum=100_000)
    reference_captures: int = _pulsed.reference_captures_parameter(20, "captures averaged for the baseline",
                                                                   maximum=100_000)
    record_after_s: float = parameter(40e-9, unit="s", doc="record (and integrate) this long after the pulse "
                                      "ends: long enough for the chip to relax", minimum=1e-9)
    pretrigger_s: float = _pulsed.pretrigger_s_parameter(10e-9, "record before the trigger (half-amplitude of the "
                                                         "leading edge)")
    sample_rate_hz: float = _pulsed.sample_rate_hz_parameter(20e9)
    bias_a: float = _pulsed.bias_a_parameter()
    detect_v: float = _pulsed.detect_v_parameter()
    ramp_a_per_s: float = _pulsed.ramp_a_per_s_parameter()


class EnergyPerSpike(Procedure):
    name = "energy_per_spike"
    minimum_valid_data = ("a baseline from at least one triggered reference capture and a finite energy from "
                          "at least one spike")
    Parameters = EnergyPerSpikeParameters

    def _settings(self, design: DesignHints) -> _pulsed.CaptureSettings:
        p = self.parameters
        return _pulsed.CaptureSettings.for_design(
            design, p.pretrigger_s + p.width_s + 2 * p.edge_s + p.record_after_s, p.pretrigger_s,
            sample_rate_hz=p.sample_rate_hz)

    def check_parameters(self) -> None:
        p = self.parameters
        _pulsed.check_timing(self.name, "width_s, edge_s", p.width_s, p.edge_s)
        # The reference captures are kept (their mean is the baseline response); the spiking ones
        # are streamed to the archive one at a time.
        _pulsed.check_captures(self.name, "reference_captures, record_after_s, pretrigger_s, sample_rate_hz",
                               self._settings(DesignHints.from_chip(None)), 2, p.reference_captures + 1)

    def _records(self, chip_design) -> _pulsed.CaptureRecords:
        """Every capture's traces, on this run's record (its length needs no design value)."""
        p = self.parameters
        planned = p.reference_captures + p.spikes + _pulsed.quick_search_captures(p.threshold_a, chip_design)
        return _pulsed.CaptureRecords(self._settings(DesignHints.from_chip(None)), TRACE_COLUMNS, planned=planned)

    def declare(self, context: PlanContext | None = None):
        chip_design = context.chip_design if context is not None else None
        tables = {"spike_energies": TableSpec({"capture": ColumnSpec("1", "i8"), "spikes": ColumnSpec("1", "i8"),
                                               "spike_energy_j": ColumnSpec("J")},
                                              axis="capture", signal="spike_energy_j")}
        if _pulsed.searches(self.parameters.threshold_a, chip_design):
            tables[_pulsed.QUICK_SEARCH_TABLE] = _pulsed.probability_table()
        return self._records(chip_design).spec(), tables

    def plan(self, context: PlanContext):
        p = self.parameters
        design = DesignHints.from_chip(context.chip_design)
        settings = self._settings(design)
        detect_v = p.detect_v or 0.3 * design.spike_amplitude_v
        bias_a = p.bias_a or design.bias_a
        window_s = (-np.inf, np.inf)       # the whole record
        records = self._records(context.chip_design)
        context.resolve(bias_a=bias_a, detect_v=detect_v)
        yield steps.SetBias(current_a=bias_a, ramp_a_per_s=p.ramp_a_per_s)
        threshold = yield from _pulsed.threshold_for(
            self.name, p.threshold_a, context.chip_design, design, settings, p.width_s, p.edge_s, detect_v,
            _pulsed.SPIKE_AFTER_S,
            lambda t, trial, a, spike, attempt: records.archive(
                t, settings, kind=KIND_SEARCH, amplitude_a=a, bias_a=bias_a, spikes=int(spike), input_energy_j=np.nan,
                bias_energy_j=np.nan, spike_energy_j=np.nan, attempt=attempt),
            dry_run=context.dry_run)
        threshold_a = threshold.value_a
        context.resolve(threshold_a=threshold_a)
        amplitude_a, reference_a = p.threshold_factor * threshold_a, p.reference_fraction * threshold_a
        yield _pulsed.pulses(reference_a, p.width_s, p.edge_s)   # levels first, then the output on
        yield steps.SetInputEnabled(enabled=True)

        # Above threshold every capture should spike; if none does, a wire may be latched
        # (_pulsed.reference_and_firing cycles the bias and measures both sets again). Each
        # capture is archived as it arrives, with the attempt it belongs to.
        stream = EnergyStream(records, settings, bias_a, amplitude_a, reference_a, window_s)
        firing = yield from _pulsed.reference_and_firing(
            settings, _pulsed.pulses(reference_a, p.width_s, p.edge_s), p.reference_captures,
            _pulsed.pulses(amplitude_a, p.width_s, p.edge_s), p.spikes,
            lambda t, reference: self._spikes(t, settings, reference, amplitude_a, detect_v),
            dry_run=context.dry_run, stream=stream, keep_firing=False)   # streamed, not kept
        if not firing.fired and not context.dry_run:       # the captures are archived
            raise _pulsed.not_firing(amplitude_a, len(firing.spikes), p.spikes,
                                     f"{p.threshold_factor:g} x {threshold.describe()}, bias_a, detect_v")
        yield steps.Progress(fraction=0.9, message="captures done")
        baseline = mean_energy(stream.reference_energies.get(firing.attempt, []))
        counts = firing.spikes           # one per triggered capture
        energies = stream.spike_energies.get(firing.attempt, [])
        base_j = baseline_j(baseline, amplitude_a, reference_a)
        spike_j = [spike_energy(e, base_j, n) for e, n in zip(energies, counts)]
        yield steps.Archive(TableRows("spike_energies", {
            "capture": (np.arange(len(spike_j), dtype=np.int64), "1"), "spikes": (np.asarray(counts, np.int64), "1"),
            "spike_energy_j": (np.asarray(spike_j, float), "J")}))
        yield steps.SetInputEnabled(enabled=False)
        yield steps.SetBias(current_a=0.0, ramp_a_per_s=p.ramp_a_per_s)

        stats = summarize(spike_j)
        total_spikes = int(sum(counts))
        # Minimum of valid data: a baseline from at least one triggered reference capture (else
        # the baseline reads 0 J and every energy is overstated) and a finite energy from spikes.
        if not context.dry_run and not stream.reference_energies.get(firing.attempt):
            raise too_little(self.name, "at least 1 triggered reference capture for the baseline",
                             f"0 of {p.reference_captures} triggered")
        if not context.dry_run and not (total_spikes and np.isfinite(sum(e.total_j for e in energies))):
            raise too_little(self.name, "a finite energy from at least 1 spike",
                             f"{total_spikes} spikes in {len(counts)} captures")
        mean_j = sum(e.total_j - base_j for e, n in zip(energies, counts) if n) / total_spikes if total_spikes else np.nan
        delivered = summarize([e.total_j for e, n in zip(energies, counts) if n])
        for name, value, units in (
            ("energy_per_spike_j", mean_j, "J"), ("energy_per_spike_std_j", stats.std, "J"),
            ("energy_per_spike_stderr_j", stats.stderr, "J"), ("spikes_averaged", total_spikes, "1"),
            ("spiking_captures", stats.count, "1"),
            ("captures", len(counts), "1"), ("delivered_per_spiking_capture_j", delivered.mean, "J"),
            ("baseline_j", base_j, "J"), ("baseline_input_j", baseline.input_j, "J"),
            ("baseline_bias_j", baseline.bias_j, "J"), ("amplitude_a", amplitude_a, "A"),
            ("reference_amplitude_a", reference_a, "A"), ("bias_a", bias_a, "A"),
        ):
            yield steps.Archive(Result(name, value, units))

    @staticmethod
    def _spikes(traces, settings, reference, amplitude_a: float, detect_v: float) -> int:
        """Spikes in a capture: rising crossings of the excess over the scaled linear response."""
        output_v = np.asarray(traces.node_voltage_v[settings.output_node], dtype=float)
        ref = reference.output_v if reference.output_v.shape == output_v.shape else None
        excess = linear_excess_v(output_v, ref, amplitude_a / reference.amplitude_a if reference.amplitude_a else 0.0)
        return int(spike_times_s(traces.time_s, excess, detect_v).size)


def mean_energy(energies: list[PortEnergy]) -> PortEnergy:
    """The mean of the reference captures' port energies (zero when there are none)."""
    if not energies:
        return PortEnergy(0.0, 0.0)
    return PortEnergy(float(np.mean([e.input_j for e in energies])), float(np.mean([e.bias_j for e in energies])))


def spike_energy(energy: PortEnergy, base_j: float, spikes: int) -> float:
    """A spiking capture's energy above the scaled baseline, per spike (NaN without a spike)."""
    return (energy.total_j - base_j) / spikes if spikes else np.nan


def capture_energy(traces: steps.ChipTraces, settings: _pulsed.CaptureSettings, bias_a: float,
                   window_s: tuple[float, float]) -> PortEnergy:
    """The energy the input and the bias deliver over the window of one capture."""
    nodes = traces.node_voltage_v
    return port_energy(traces.time_s, nodes[settings.output_node], traces.input_a,
                       nodes.get(settings.bias_node), bias_a, window_s)


@dataclass
class EnergyStream:
    """Each capture of the firing check as it arrives (a _pulsed.FiringStream): its energy,
    kept per attempt, and its traces archived with it."""
    records: _pulsed.CaptureRecords
    settings: _pulsed.CaptureSettings
    bias_a: float
    amplitude_a: float
    reference_a: float
    window_s: tuple[float, float]
    reference_energies: dict[int, list[PortEnergy]] = field(default_factory=dict)   # per attempt
    spike_energies: dict[int, list[PortEnergy]] = field(default_factory=dict)

    def reference(self, traces: steps.ChipTraces, attempt: int):
        energy = capture_energy(traces, self.settings, self.bias_a, self.window_s)
        self.reference_energies.setdefault(attempt, []).append(energy)
        yield from self._archive(traces, energy, KIND_REFERENCE, self.reference_a, 0, np.nan, attempt)

    def firing(self, traces: steps.ChipTraces, reference: _pulsed.Response, spikes: int, attempt: int):
        base_j = baseline_j(mean_energy(self.reference_energies.get(attempt, [])), self.amplitude_a,
                            self.reference_a)
        energy = capture_energy(traces, self.settings, self.bias_a, self.window_s)
        self.spike_energies.setdefault(attempt, []).append(energy)
        yield from self._archive(traces, energy, KIND_SPIKE, self.amplitude_a, spikes,
                                 spike_energy(energy, base_j, spikes), attempt)

    def _archive(self, traces: steps.ChipTraces, energy: PortEnergy, kind: int, amplitude_a: float, spikes: int,
                 spike_j: float, attempt: int):
        return self.records.archive(traces, self.settings, kind=kind, amplitude_a=amplitude_a, bias_a=self.bias_a,
                                    spikes=spikes, input_energy_j=energy.input_j, bias_energy_j=energy.bias_j,
                                    spike_energy_j=spike_j, attempt=attempt)
