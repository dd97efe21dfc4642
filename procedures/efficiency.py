"""Energy efficiency: measured energy per spike → SOPS/W on chip and at the wall plug,
beside the human brain, CMOS neuromorphic chips and the published nanowire figures.

SOPS/W = 1 / (energy per synaptic event). This chip has no synapse to measure, so the energy
of one synaptic event is taken as `synaptic_energy_ratio` × the measured energy per spike
(default 0.1: the design simulation's ~5 aJ per event against ~50 aJ per spike, as reported —
an assumption, stated in the results). At the wall plug every joule dissipated at 4 K costs
(1 + cooling overhead) joules. Every reference figure is archived with its source and status
(analysis.references); no instrument is touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import steps
from contracts.procedure import PlanContext, Procedure, parameter
from contracts.records import Result
from procedures.analysis.references import (
    CRYOCOOLER_OVERHEAD_SOURCE, CRYOCOOLER_OVERHEAD_W_PER_W, REFERENCE_FIGURES, carnot_overhead_w_per_w, sops_per_w,
)


@dataclass(frozen=True)
class EfficiencyParameters:
    energy_per_spike_j: float = parameter(10e-18, unit="J", doc="measured energy per spike (from "
                                          "energy_per_spike; the default is only the published scale)",
                                          minimum=1e-24, maximum=1e-6)
    energy_per_spike_std_j: float = parameter(0.0, unit="J", doc="its spread (from energy_per_spike)",
                                              minimum=0.0)
    synaptic_energy_ratio: float = parameter(0.1, unit="1", doc="synaptic event energy / spike energy "
                                             "(assumption; design figures as reported)", minimum=1e-6, maximum=10.0)
    cooling_overhead_w_per_w: float = parameter(CRYOCOOLER_OVERHEAD_W_PER_W, unit="1", doc="wall-plug watts "
                                                "per watt removed at the chip's temperature", minimum=0.0)
    chip_temperature_k: float = parameter(4.2, unit="K", doc="stage temperature (for the Carnot bound)",
                                          minimum=0.01, maximum=300.0)


class Efficiency(Procedure):
    name = "efficiency"
    minimum_valid_data = "none measured: it computes from its parameters (finite by their bounds)"
    Parameters = EfficiencyParameters

    def plan(self, context: PlanContext):
        p = self.parameters
        synaptic_j = p.synaptic_energy_ratio * p.energy_per_spike_j
        on_chip = sops_per_w(synaptic_j)
        wall = sops_per_w(synaptic_j, p.cooling_overhead_w_per_w)
        measured = (
            ("energy_per_spike_j", p.energy_per_spike_j, "J"),
            ("energy_per_spike_std_j", p.energy_per_spike_std_j, "J"),
            ("energy_per_synaptic_event_j", synaptic_j, "J"),
            ("synaptic_energy_ratio", p.synaptic_energy_ratio, "1"),
            ("spikes_per_joule_on_chip", 1.0 / p.energy_per_spike_j, "J-1"),
            ("sops_per_w_on_chip", on_chip, "J-1"),
            ("sops_per_w_wall_plug", wall, "J-1"),
            ("cooling_overhead_w_per_w", p.cooling_overhead_w_per_w, "1"),
            ("carnot_overhead_w_per_w", carnot_overhead_w_per_w(p.chip_temperature_k), "1"),
        )
        for name, value, units in measured:
            yield steps.Archive(Result(name, value, units))
        yield steps.Archive(Result("cooling_overhead_source", CRYOCOOLER_OVERHEAD_SOURCE, ""))
        yield steps.Archive(Result("synaptic_energy_ratio_source", "assumption: 5 aJ per synaptic event against "
                                   "50 aJ per spike in the design simulation (Toomey, Segall, Berggren, Front. "
                                   "Neurosci. 13, 933 (2019)), figures as reported by the press; status: reported",
                                   ""))
        for figure in REFERENCE_FIGURES:
            key = figure.key
            for name, value, units in (
                (f"{key}_energy_per_synaptic_event_j", figure.energy_per_synaptic_event_j, "J"),
                (f"{key}_sops_per_w", figure.sops_per_w, "J-1"),
                (f"{key}_wall_plug_advantage", wall / figure.sops_per_w, "1"),
                (f"{key}_on_chip_advantage", on_chip / figure.sops_per_w, "1"),
            ):
                yield steps.Archive(Result(name, value, units))
            yield steps.Archive(Result(f"{key}_source", f"{figure.platform}: {figure.source}", ""))
            yield steps.Archive(Result(f"{key}_status", f"{figure.status}; {figure.note}", ""))
        yield steps.Progress(fraction=1.0, message=f"{wall:.3g} SOPS/W at the wall plug")
