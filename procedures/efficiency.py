"""Energy efficiency: measured energy per spike → spikes and synaptic operations per joule, on
chip and at the wall plug, beside the human brain, CMOS neuromorphic chips and the published
nanowire figures.

Per spike (measured): spikes per joule = 1 / energy per spike. Per synaptic operation (one pre
spike switching one synapse; NeuroBench's definition): with the energy per synaptic event
measured (`synaptic_energy_j`, handed on from synaptic_energy on a chip with a synapse), a spike
that drives `fan_out` synapses costs E_spike + fan_out · E_syn, so each synaptic operation costs
E_op = E_syn + E_spike / fan_out and SOPS/W = 1 / E_op; at `event_rate_hz` spikes per second the
chip dissipates event_rate_hz · (E_spike + fan_out · E_syn). No assumed ratio is used or archived
then. Without a measured synaptic energy (a chip without a synapse) the energy of one synaptic
event is taken as `synaptic_energy_ratio` × the measured energy per spike (default 0.1: the design
simulation's ~5 aJ per event against ~50 aJ per spike, as reported): every figure resting on that
assumption is named `…_assuming_synaptic_ratio`. At the wall plug every joule dissipated at 4 K
costs (1 + cooling overhead) joules; both figures are archived.

The energy per spike's interval (energy_per_spike_low_j/high_j at energy_per_spike_level, from
energy_per_spike's `energy_per_spike_j` uncertainty) is carried into every figure derived from
it: each is monotone in the energy alone, so the images of the interval's bounds are its
interval at the same level (exact, not a linearisation). Every reference figure is archived with
its source and status (analysis.references); no instrument is touched. A figure resting on both
measured energies is monotone in each: its bounds are its values at the corners of the two
intervals, which cover the joint region of two independent intervals at level², labelled so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contracts import steps
from contracts.procedure import PlanContext, Procedure, parameter
from contracts.records import ColumnSpec, Result, TableRows, TableSpec, Uncertainty
from procedures.analysis.references import (
    CRYOCOOLER_OVERHEAD_SOURCE, CRYOCOOLER_OVERHEAD_W_PER_W, REFERENCE_FIGURES, carnot_overhead_w_per_w, sops_per_w,
)


#: The names of the figures that rest on the assumed synaptic energy end so.
ASSUMING = "_assuming_synaptic_ratio"
#: One row per system: this chip (row 0, assuming the synaptic ratio) and each reference figure
#: in `REFERENCE_FIGURES` order, named in the result `comparison_systems`. The archive's
#: default plot: energy per synaptic event against system.
COMPARISON_TABLE = "comparison"


@dataclass(frozen=True)
class EfficiencyParameters:
    energy_per_spike_j: float = parameter(10e-18, unit="J", doc="measured energy per spike (from "
                                          "energy_per_spike; the default is only the published scale)",
                                          minimum=1e-24, maximum=1e-6)
    energy_per_spike_std_j: float = parameter(0.0, unit="J", doc="its spread (from energy_per_spike)",
                                              minimum=0.0)
    energy_per_spike_low_j: float = parameter(0.0, unit="J", doc="lower bound of the energy per spike's interval "
                                              "(from energy_per_spike); 0: no interval given", minimum=0.0)
    energy_per_spike_high_j: float = parameter(0.0, unit="J", doc="upper bound of the energy per spike's interval "
                                               "(from energy_per_spike); 0: no interval given", minimum=0.0)
    energy_per_spike_level: float = parameter(0.95, unit="1", doc="confidence level of that interval",
                                              minimum=0.5, maximum=0.9999)
    synaptic_energy_ratio: float = parameter(0.1, unit="1", doc="synaptic event energy / spike energy "
                                             "(assumption; design figures as reported)", minimum=1e-6, maximum=10.0)
    synaptic_energy_j: float = parameter(0.0, unit="J", doc="measured energy per synaptic event (from "
                                         "synaptic_energy); 0: none measured, the assumed ratio is used", minimum=0.0)
    synaptic_energy_low_j: float = parameter(0.0, unit="J", doc="lower bound of its interval; 0: none", minimum=0.0)
    synaptic_energy_high_j: float = parameter(0.0, unit="J", doc="upper bound of its interval; 0: none", minimum=0.0)
    synaptic_energy_level: float = parameter(0.95, unit="1", doc="confidence level of that interval",
                                             minimum=0.5, maximum=0.9999)
    synaptic_repeats_disagree: int = parameter(0, unit="1", doc="1 when synaptic_energy's repeats disagreed by "
                                               "more than 5 %", minimum=0, maximum=1)
    fan_out: int = parameter(1, unit="1", doc="synapses each spike drives", minimum=1, maximum=1_000_000)
    event_rate_hz: float = parameter(1e9, unit="Hz", doc="spikes per second for the stated power", minimum=1e-3,
                                     maximum=1e12)
    cooling_overhead_w_per_w: float = parameter(CRYOCOOLER_OVERHEAD_W_PER_W, unit="1", doc="wall-plug watts "
                                                "per watt removed at the chip's temperature", minimum=0.0)
    chip_temperature_k: float = parameter(4.2, unit="K", doc="stage temperature (for the Carnot bound)",
                                          minimum=0.01, maximum=300.0)


class Efficiency(Procedure):
    name = "efficiency"
    minimum_valid_data = "none measured: it computes from its parameters (finite by their bounds)"
    Parameters = EfficiencyParameters

    def declare(self, context: PlanContext | None = None):
        return None, {COMPARISON_TABLE: TableSpec(
            {"system": ColumnSpec("1", "i8"), "energy_per_synaptic_event_j": ColumnSpec("J"),
             "sops_per_w": ColumnSpec("J-1")}, axis="system", signal="energy_per_synaptic_event_j")}

    def _energy_interval(self) -> Uncertainty:
        """The energy per spike's interval as handed on (NaN bounds when none was, or when it
        does not hold the value)."""
        p = self.parameters
        low, high = p.energy_per_spike_low_j, p.energy_per_spike_high_j
        if low > 0 and high > 0 and low <= p.energy_per_spike_j <= high:
            return Uncertainty(f"as measured by energy_per_spike (its energy_per_spike_j interval, "
                               f"{p.energy_per_spike_level:.0%})", p.energy_per_spike_level, low, high)
        return Uncertainty("no interval handed on for energy_per_spike_j", p.energy_per_spike_level,
                           math.nan, math.nan)

    def _propagated(self, name: str, value_of_energy, units: str) -> Result:
        """A figure f(energy per spike), monotone in it, with the interval of the energy mapped
        through f (bounds in order)."""
        energy = self._energy_interval()
        ends = sorted((value_of_energy(float(energy.low)), value_of_energy(float(energy.high))))
        method = (f"propagated from energy_per_spike_j ({energy.method}): the interval's bounds mapped "
                  "through this figure, which is monotone in the energy alone (exact at the same level)")
        return Result(name, value_of_energy(self.parameters.energy_per_spike_j), units,
                      uncertainty=Uncertainty(method, energy.level, ends[0], ends[1]))

    def _synaptic_interval(self) -> Uncertainty | None:
        p = self.parameters
        low, high = p.synaptic_energy_low_j, p.synaptic_energy_high_j
        if low > 0 and high > 0 and low <= p.synaptic_energy_j <= high:
            return Uncertainty(f"as measured by synaptic_energy (its synaptic_energy_j interval, "
                               f"{p.synaptic_energy_level:.0%})", p.synaptic_energy_level, low, high)
        return None

    def _from_both(self, name: str, of_energies, units: str) -> Result:
        """A figure f(E_syn, E_spike), monotone in each: its bounds are the extremes of f at the four
        corners of the two measured intervals (joint level: the product of theirs)."""
        p = self.parameters
        spike, synaptic = self._energy_interval(), self._synaptic_interval()
        value = of_energies(p.synaptic_energy_j, p.energy_per_spike_j)
        if synaptic is None or not np.isfinite(spike.low):
            return Result(name, value, units, uncertainty=Uncertainty(
                "no interval: one of the two measured energies was handed on without one", 0.95, math.nan, math.nan))
        corners = [of_energies(float(e_syn), float(e_spike))
                   for e_syn in (synaptic.low, synaptic.high) for e_spike in (spike.low, spike.high)]
        return Result(name, value, units, uncertainty=Uncertainty(
            f"bounds at the corners of the measured intervals of energy_per_spike_j ({spike.level:.0%}) and "
            f"synaptic_energy_j ({synaptic.level:.0%}), through this figure, monotone in both: the joint region of "
            "two independent intervals, at the product of their levels", spike.level * synaptic.level,
            min(corners), max(corners)))

    def _per_operation(self, name: str, of_operation_j, units: str) -> Result:
        """A figure f(E_op), E_op = E_syn + E_spike / fan_out, monotone in E_op (_from_both)."""
        fan_out = self.parameters.fan_out
        return self._from_both(name, lambda e_syn, e_spike: of_operation_j(e_syn + e_spike / fan_out), units)

    def _measured_synaptic_figures(self):
        """The figures from both measured energies (no assumed ratio)."""
        p = self.parameters
        overhead, rate = p.cooling_overhead_w_per_w, p.event_rate_hz
        per_spike_j = p.energy_per_spike_j + p.fan_out * p.synaptic_energy_j
        yield Result("synaptic_energy_j", p.synaptic_energy_j, "J", uncertainty=self._synaptic_interval())
        yield Result("fan_out", p.fan_out, "1", exact="setting the run used")
        yield Result("event_rate_hz", rate, "Hz", exact="setting the run used")
        yield Result("synaptic_repeats_disagree", p.synaptic_repeats_disagree, "1",
                     exact="as synaptic_energy said of its repeats (1: they differ by more than 5 %)")
        yield self._from_both("synaptic_to_spike_energy", lambda e_syn, e_spike: e_syn / e_spike, "1")
        yield self._per_operation("energy_per_synaptic_operation_j", lambda e: e, "J")
        yield self._per_operation("sops_per_w_on_chip", sops_per_w, "J-1")
        yield self._per_operation("sops_per_w_wall_plug", lambda e: sops_per_w(e, overhead), "J-1")
        yield Result("chip_power_at_event_rate_w", rate * per_spike_j, "W",
                     exact="event_rate_hz x (E_spike + fan_out x E_syn), at the measured means")
        yield Result("wall_plug_power_at_event_rate_w", rate * per_spike_j * (1 + overhead), "W",
                     exact="the chip's power x (1 + cooling overhead), at the measured means")
        for figure in REFERENCE_FIGURES:
            key = figure.key
            yield Result(f"{key}_energy_per_synaptic_event_j", figure.energy_per_synaptic_event_j, "J")
            yield Result(f"{key}_sops_per_w", figure.sops_per_w, "J-1")
            yield self._per_operation(f"{key}_wall_plug_advantage",
                                      lambda e: sops_per_w(e, overhead) / figure.sops_per_w, "1")
            yield self._per_operation(f"{key}_on_chip_advantage", lambda e: sops_per_w(e) / figure.sops_per_w, "1")
            yield Result(f"{key}_source", f"{figure.platform}: {figure.source}", "")
            yield Result(f"{key}_status", f"{figure.status}; {figure.note}", "")

    def plan(self, context: PlanContext):
        p = self.parameters
        if p.synaptic_energy_j > 0:
            yield from self._plan_measured()
            return
        ratio, overhead = p.synaptic_energy_ratio, p.cooling_overhead_w_per_w
        figures = [
            Result("energy_per_spike_j", p.energy_per_spike_j, "J", uncertainty=self._energy_interval()),
            Result("energy_per_spike_std_j", p.energy_per_spike_std_j, "J"),
            # Measured, no assumption: per spike.
            self._propagated("spikes_per_joule_on_chip", lambda e: sops_per_w(e), "J-1"),
            self._propagated("spikes_per_joule_wall_plug", lambda e: sops_per_w(e, overhead), "J-1"),
            # Resting on the assumed synaptic energy.
            self._propagated(f"energy_per_synaptic_event{ASSUMING}_j", lambda e: ratio * e, "J"),
            self._propagated(f"sops_per_w_on_chip{ASSUMING}", lambda e: sops_per_w(ratio * e), "J-1"),
            self._propagated(f"sops_per_w_wall_plug{ASSUMING}", lambda e: sops_per_w(ratio * e, overhead), "J-1"),
            Result("synaptic_energy_ratio", ratio, "1"),
            Result("cooling_overhead_w_per_w", overhead, "1"),
            Result("carnot_overhead_w_per_w", carnot_overhead_w_per_w(p.chip_temperature_k), "1",
                   exact="the Carnot limit at the handed-on chip temperature"),
        ]
        for result in figures:
            yield steps.Archive(result)
        yield steps.Archive(Result("cooling_overhead_source", CRYOCOOLER_OVERHEAD_SOURCE, ""))
        yield steps.Archive(Result("synaptic_energy_ratio_source", "assumption: 5 aJ per synaptic event against "
                                   "50 aJ per spike in the design simulation (Toomey, Segall, Berggren, Front. "
                                   "Neurosci. 13, 933 (2019)), figures as reported by the press; status: reported",
                                   ""))
        for figure in REFERENCE_FIGURES:
            key = figure.key
            yield steps.Archive(Result(f"{key}_energy_per_synaptic_event_j", figure.energy_per_synaptic_event_j, "J"))
            yield steps.Archive(Result(f"{key}_sops_per_w", figure.sops_per_w, "J-1"))
            yield steps.Archive(self._propagated(f"{key}_wall_plug_advantage{ASSUMING}",
                                                 lambda e: sops_per_w(ratio * e, overhead) / figure.sops_per_w, "1"))
            yield steps.Archive(self._propagated(f"{key}_on_chip_advantage{ASSUMING}",
                                                 lambda e: sops_per_w(ratio * e) / figure.sops_per_w, "1"))
            yield steps.Archive(Result(f"{key}_source", f"{figure.platform}: {figure.source}", ""))
            yield steps.Archive(Result(f"{key}_status", f"{figure.status}; {figure.note}", ""))
        synaptic_j = [ratio * p.energy_per_spike_j] + [f.energy_per_synaptic_event_j for f in REFERENCE_FIGURES]
        yield steps.Archive(TableRows(COMPARISON_TABLE, {
            "system": (np.arange(len(synaptic_j)), "1"),
            "energy_per_synaptic_event_j": (np.array(synaptic_j), "J"),
            "sops_per_w": (np.array([sops_per_w(ratio * p.energy_per_spike_j)]
                                    + [f.sops_per_w for f in REFERENCE_FIGURES]), "J-1")}))
        yield steps.Archive(Result("comparison_systems", "; ".join(
            [f"0: this chip (on chip{ASSUMING.replace('_', ' ')})"]
            + [f"{row}: {figure.platform}" for row, figure in enumerate(REFERENCE_FIGURES, start=1)]), ""))
        wall = sops_per_w(ratio * p.energy_per_spike_j, overhead)
        yield steps.Progress(fraction=1.0, message=f"{sops_per_w(p.energy_per_spike_j, overhead):.3g} spikes/J, "
                             f"{wall:.3g} SOPS/W assuming synaptic energy = {ratio:g} x spike energy, at the wall plug")

    def _plan_measured(self):
        p = self.parameters
        overhead = p.cooling_overhead_w_per_w
        for result in (
                Result("energy_per_spike_j", p.energy_per_spike_j, "J", uncertainty=self._energy_interval()),
                Result("energy_per_spike_std_j", p.energy_per_spike_std_j, "J"),
                self._propagated("spikes_per_joule_on_chip", lambda e: sops_per_w(e), "J-1"),
                self._propagated("spikes_per_joule_wall_plug", lambda e: sops_per_w(e, overhead), "J-1"),
                *self._measured_synaptic_figures(),
                Result("cooling_overhead_w_per_w", overhead, "1"),
                Result("cooling_overhead_source", CRYOCOOLER_OVERHEAD_SOURCE, ""),
                Result("carnot_overhead_w_per_w", carnot_overhead_w_per_w(p.chip_temperature_k), "1",
                       exact="the Carnot limit at the handed-on chip temperature")):
            yield steps.Archive(result)
        operation_j = p.synaptic_energy_j + p.energy_per_spike_j / p.fan_out
        synaptic_j = [operation_j] + [f.energy_per_synaptic_event_j for f in REFERENCE_FIGURES]
        yield steps.Archive(TableRows(COMPARISON_TABLE, {
            "system": (np.arange(len(synaptic_j)), "1"),
            "energy_per_synaptic_event_j": (np.array(synaptic_j), "J"),
            "sops_per_w": (np.array([sops_per_w(operation_j)] + [f.sops_per_w for f in REFERENCE_FIGURES]), "J-1")}))
        yield steps.Archive(Result("comparison_systems", "; ".join(
            [f"0: this chip (on chip, measured: synaptic event + spike / fan-out {p.fan_out})"]
            + [f"{row}: {figure.platform}" for row, figure in enumerate(REFERENCE_FIGURES, start=1)]), ""))
        yield steps.Progress(fraction=1.0, message=f"{sops_per_w(operation_j, overhead):.3g} SOPS/W at the wall plug, "
                             f"{sops_per_w(operation_j):.3g} on chip, from measured spike and synaptic energies")
