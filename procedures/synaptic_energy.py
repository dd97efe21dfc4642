"""Energy per synaptic event, measured from the weight port's trace and the known weight current.

A synaptic event costs what the synapse's supply, the weight (control) source, delivers when a
pre spike switches the synapse wire and its return inductor releases the weight current: the
energy the wire and resistors dissipate plus what reaches the post-neuron, less what the pre's
tap pushes in (which the pre's spike energy already counts). It is measured as
E = s · I_w · ∫V_w dt over the record, V_w the weight port's node from the scope, I_w the DC
weight current this plan set and s the port's orientation (_synaptic), minus the baseline: the
same from sub-threshold references (no pre spike, no event) scaled by A/A0. A synaptic event is a
capture with exactly one pre spike after which the weight node shows the synapse wire's switching
(_synaptic.read_capture); their energies above the baseline are averaged. Pre spikes that did not
switch the synapse (~0.3 aJ, what the pre's tap alone costs the weight source) are counted apart.

Reporting follows NeuroBench's system track: the synaptic operation is defined (one pre spike
switching one synapse), the measurement is repeated `repeats` times (each with its own
references), the mean over every event is reported with its Student t interval and the repeats'
spread, and when two repeats' means differ by more than 5 % of the mean that is said
(`repeats_disagree`, and in the run's message). Every capture's energies are in the table
`events`, each repeat's mean in `repeats`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from contracts import steps
from contracts.procedure import PlanContext, Procedure, parameter, too_little
from contracts.records import ColumnSpec, Result, TableRows, TableSpec
from contracts.units import format_si
from procedures import _pulsed, _synaptic
from procedures.analysis.statistics import CONFIDENCE_LEVEL, mean_uncertainty, summarize
from procedures.synaptic_transfer import capture_set

#: Repeats whose means differ by more than this fraction of the mean disagree (NeuroBench).
REPEAT_AGREEMENT = 0.05
EVENTS_TABLE, REPEATS_TABLE = "events", "repeats"
EVENT_COLUMNS = {"repeat": ColumnSpec("1", "i8"), "pre_spikes": ColumnSpec("1", "i8"),
                 "synapse_switched": ColumnSpec("1", "i1"), "post_spiked": ColumnSpec("1", "i1"), "weight_energy_j": ColumnSpec("J"),
                 "event_energy_j": ColumnSpec("J")}
REPEAT_COLUMNS = {"repeat": ColumnSpec("1", "i8"), "events": ColumnSpec("1", "i8"),
                  "mean_energy_j": ColumnSpec("J")}


@dataclass(frozen=True)
class SynapticEnergyParameters(_synaptic.SynapticParameters):
    weight_a: float = parameter(0.0, unit="A", doc="weight (control) current; 0 takes the design weight",
                                minimum=0.0)
    repeats: int = parameter(5, unit="1", doc="independent repeats (NeuroBench asks at least 5)", minimum=1,
                             maximum=1000)
    captures: int = parameter(8, unit="1", doc="captures at the firing amplitude per repeat", minimum=1,
                              maximum=10_000)
    reference_captures: int = _pulsed.reference_captures_parameter(4, "sub-threshold captures per repeat")


class SynapticEnergy(Procedure):
    name = "synaptic_energy"
    minimum_valid_data = "at least one capture with exactly one pre spike (a synaptic event) and a baseline"
    Parameters = SynapticEnergyParameters

    def check_parameters(self) -> None:
        p = self.parameters
        _pulsed.check_timing(self.name, "width_s, edge_s", p.width_s, p.edge_s)

    def declare(self, context: PlanContext | None = None):
        tables = {EVENTS_TABLE: TableSpec(EVENT_COLUMNS, axis="repeat", signal="event_energy_j"),
                  REPEATS_TABLE: TableSpec(REPEAT_COLUMNS, axis="repeat", signal="mean_energy_j")}
        if _pulsed.searches(self.parameters.threshold_a, context.chip_design if context else None):
            tables[_pulsed.QUICK_SEARCH_TABLE] = _pulsed.probability_table()
        return None, tables

    def plan(self, context: PlanContext):
        p = self.parameters
        run = yield from _synaptic.set_up(self.name, p, context)
        weight_a = p.weight_a or run.synapse.weight_a
        context.resolve(weight_a=weight_a)
        weight_port_v = yield from _synaptic.set_weight(run.synapse, weight_a, p.ramp_a_per_s, self.name,
                                                        dry_run=context.dry_run)
        yield _pulsed.pulses(run.reference_a, p.width_s, p.edge_s)       # levels first, then the output on
        yield steps.SetInputEnabled(enabled=True)
        read: list[tuple[int, _synaptic.SynapticCapture]] = []
        for repeat in range(p.repeats):
            found = yield from capture_set(run, weight_a, p)
            read += [(repeat, c) for c in found]
            events = [c for r, c in read if r == repeat and is_event(c)]
            yield steps.Progress(fraction=(repeat + 1) / p.repeats,
                                 message=f"repeat {repeat + 1} of {p.repeats}: {len(events)} synaptic events")
        yield from _synaptic.tear_down(run.synapse, p.ramp_a_per_s)
        amplitude_a = run.amplitude_a
        yield steps.Archive(TableRows(EVENTS_TABLE, {
            "repeat": (np.array([r for r, _ in read], np.int64), "1"),
            "pre_spikes": (np.array([c.pre_spikes for _, c in read], np.int64), "1"),
            "synapse_switched": (np.array([c.synapse_switched for _, c in read], np.int8), "1"),
            "post_spiked": (np.array([c.post_spiked for _, c in read], np.int8), "1"),
            "weight_energy_j": (np.array([c.weight_energy_j for _, c in read], float), "J"),
            "event_energy_j": (np.array([c.event_energy_j for _, c in read], float), "J")}))
        if not context.dry_run and not any(is_event(c) for _, c in read):
            raise too_little(self.name, "a synaptic event (one pre spike, the synapse switched)",
                             f"none in {len(read)} captures at {format_si(amplitude_a, 'A')} "
                             f"({sum(c.pre_spikes == 1 for _, c in read)} with one pre spike)")
        for result in energy_results(read, p.repeats):
            yield steps.Archive(result)
        yield steps.Archive(Result("weight_port_v", weight_port_v, "V", exact="one reading of the weight source"))
        for name, value in (("amplitude_a", amplitude_a), ("weight_a", weight_a),
                            ("post_bias_a", context.resolved["post_bias_a"]), ("bias_a", context.resolved["bias_a"])):
            yield steps.Archive(Result(name, value, "A", exact="setting the run used"))


def is_event(capture: _synaptic.SynapticCapture) -> bool:
    """One pre spike, and the synapse switched after it."""
    return capture.pre_spikes == 1 and capture.synapse_switched


def energy_results(read: list[tuple[int, _synaptic.SynapticCapture]], repeats: int,
                   level: float = CONFIDENCE_LEVEL) -> list:
    """The mean energy per synaptic event over every event (Student t), its spread, each repeat's
    mean and whether the repeats agree within REPEAT_AGREEMENT."""
    events = [(r, c) for r, c in read if is_event(c)]
    energies = [c.event_energy_j for _, c in events]
    stats = summarize(energies)
    uncertainty = mean_uncertainty(stats, level)
    per_repeat = [summarize([c.event_energy_j for r, c in events if r == k]) for k in range(repeats)]
    means = np.array([s.mean for s in per_repeat])
    finite = means[np.isfinite(means)]
    spread = float(np.ptp(finite) / abs(stats.mean)) if finite.size > 1 and stats.mean else math.nan
    disagree = bool(spread > REPEAT_AGREEMENT)
    return [
        Result("synaptic_energy_j", stats.mean, "J", uncertainty=replace(
            uncertainty, method=f"{uncertainty.method}: energies the weight source delivered above the baseline, "
                                f"over {stats.count} synaptic events in {repeats} repeats")),
        Result("synaptic_energy_std_j", stats.std, "J"),
        Result("synaptic_events", stats.count, "1"),
        Result("transmitted_events", sum(c.post_spiked for _, c in events), "1"),
        Result("pre_spikes_without_event", sum(c.pre_spikes == 1 and not c.synapse_switched for _, c in read), "1"),
        Result("weight_node_clipped_captures", sum(c.weight_node_clipped for _, c in read), "1"),
        Result("repeat_means_j", means, "J"),
        Result("repeats_spread", spread, "1",
               exact="largest minus smallest repeat mean, over the mean (NaN with fewer than two repeats)"),
        Result("repeats_disagree", int(disagree), "1",
               exact=f"1 when repeats' means differ by more than {REPEAT_AGREEMENT:.0%} of the mean"),
        TableRows(REPEATS_TABLE, {"repeat": (np.arange(repeats, dtype=np.int64), "1"),
                                  "events": (np.array([s.count for s in per_repeat], np.int64), "1"),
                                  "mean_energy_j": (means, "J")}),
    ]
