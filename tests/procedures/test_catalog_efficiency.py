"""Campaign order and hand-offs; the efficiency report's arithmetic and citations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lab.execution.dry_run import dry_run
from contracts.procedure import PlanContext
from contracts.records import Axis, Result, TableRows, Uncertainty
from procedures.analysis.references import REFERENCE_FIGURES, carnot_overhead_w_per_w, sops_per_w
from procedures.catalog import CAMPAIGN, campaign_plan, hand_off
from procedures.efficiency import Efficiency
from procedures.energy_per_spike import EnergyPerSpike
from procedures.firing_rate import FiringRate
from procedures.refractory import Refractory


def test_campaign_runs_in_the_documented_order_and_ends():
    done: dict = {}
    order = []
    while (procedure := campaign_plan(done)) is not None:
        order.append(procedure.name)
        done[procedure.name] = {}
    assert order == ["cooldown", "iv_sweep", "strength_duration", "refractory", "firing_rate",
                     "energy_per_spike", "efficiency"]
    # A chip with a synapse: the synaptic procedures before the efficiency, which takes their energy.
    synapse_chip = {"elements": [{"name": "syn_w", "type": "nanowire"}]}
    done, with_synapse = {}, []
    while (procedure := campaign_plan(done, chip_design=synapse_chip)) is not None:
        with_synapse.append(procedure.name)
        done[procedure.name] = {}
    assert with_synapse == [*order[:-1], "synaptic_transfer", "synaptic_energy", "efficiency"]
    assert [p.name for p in CAMPAIGN] == with_synapse


def test_results_feed_the_next_procedures():
    widths = np.array([16e-9, 32e-9])
    results = {
        "cooldown": {"stable_temperature_k": Result("stable_temperature_k", 4.19, "K")},
        "strength_duration": {
            "threshold_a": Result("threshold_a", np.array([14e-6, 11e-6]), "A", Axis("width_s", widths, "s")),
            "rheobase_a": Result("rheobase_a", 9e-6, "A")},
        "energy_per_spike": {"energy_per_spike_j": Result("energy_per_spike_j", 12e-18, "J"),
                             "energy_per_spike_std_j": Result("energy_per_spike_std_j", math.nan, "J")},
    }
    assert hand_off(Refractory, results)["threshold_a"] == 14e-6            # default width 16 ns
    assert hand_off(EnergyPerSpike, results, {"width_s": 30e-9})["threshold_a"] == 11e-6
    assert hand_off(FiringRate, results) == {"current_min_a": 4.5e-6, "current_max_a": 18e-6}
    efficiency = hand_off(Efficiency, results)
    assert efficiency == {"energy_per_spike_j": 12e-18, "chip_temperature_k": 4.19}   # NaN std not handed on
    # the energy's interval goes with it: the efficiency maps its bounds through every figure
    results["energy_per_spike"]["energy_per_spike_j"] = Result(
        "energy_per_spike_j", 12e-18, "J", uncertainty=Uncertainty("Student t interval on the mean (n = 36)", 0.95,
                                                                    11.5e-18, 12.5e-18, 0.25e-18))
    assert hand_off(Efficiency, results) == {"energy_per_spike_j": 12e-18, "chip_temperature_k": 4.19,
                                             "energy_per_spike_low_j": 11.5e-18, "energy_per_spike_high_j": 12.5e-18,
                                             "energy_per_spike_level": 0.95}
    nxt = campaign_plan({k: results.get(k, {}) for k in ("cooldown", "iv_sweep", "strength_duration")})
    assert isinstance(nxt, Refractory) and nxt.parameters.threshold_a == 14e-6


def test_efficiency_reports_measured_and_reference_figures_with_sources(station):
    report = dry_run(Efficiency(energy_per_spike_j=20e-18, synaptic_energy_ratio=0.1,
                                cooling_overhead_w_per_w=999.0), station)
    results = {s.record.name: s.record.value for s, _ in report.steps if isinstance(getattr(s, "record", None), Result)}
    assert results["energy_per_synaptic_event_assuming_synaptic_ratio_j"] == pytest.approx(2e-18)
    assert results["sops_per_w_on_chip_assuming_synaptic_ratio"] == pytest.approx(5e17)
    assert results["sops_per_w_wall_plug_assuming_synaptic_ratio"] == pytest.approx(5e17 / 1000)
    assert results["spikes_per_joule_on_chip"] == pytest.approx(5e16)        # no assumption: per spike
    assert results["spikes_per_joule_wall_plug"] == pytest.approx(5e16 / 1000)
    for figure in REFERENCE_FIGURES:
        assert figure.source and figure.status in ("verified", "reported")
        assert figure.source.split(",")[0] in results[f"{figure.key}_source"]
        assert results[f"{figure.key}_status"].startswith(figure.status)
        assert results[f"{figure.key}_sops_per_w"] == figure.sops_per_w
        assert results[f"{figure.key}_wall_plug_advantage_assuming_synaptic_ratio"] == pytest.approx(
            5e14 / figure.sops_per_w)
    assert {"truenorth", "spinnaker", "loihi", "human_brain"} <= {f.key for f in REFERENCE_FIGURES}
    assert "Cryogenics" in results["cooling_overhead_source"]


def test_reference_arithmetic():
    assert sops_per_w(1e-12) == pytest.approx(1e12)
    assert sops_per_w(1e-12, 999.0) == pytest.approx(1e9)
    assert math.isnan(sops_per_w(0.0))
    assert carnot_overhead_w_per_w(4.2) == pytest.approx(70.43, rel=1e-3)
    for figure in REFERENCE_FIGURES:   # each figure's SOPS/W is within an order of its energy's reciprocal
        assert 0.1 < figure.sops_per_w * figure.energy_per_synaptic_event_j < 10


def test_efficiency_carries_the_energy_interval_into_every_derived_figure():
    """Each figure derived from the energy per spike gets the energy's interval mapped through it:
    bounds in order, at the energy's level, the method naming where it comes from."""

    energy = Efficiency(energy_per_spike_j=14e-18, energy_per_spike_low_j=13e-18, energy_per_spike_high_j=16e-18,
                        energy_per_spike_level=0.9, cooling_overhead_w_per_w=999.0)
    results = {s.record.name: s.record for s in energy.plan(PlanContext())
               if isinstance(getattr(s, "record", None), Result)}
    derived = [name for name in results if name.startswith(("spikes_per_joule", "sops_per_w", "energy_per_synaptic"))
               or "advantage" in name]
    assert len(derived) == 5 + 2 * len(REFERENCE_FIGURES)
    for name in derived:
        u = results[name].uncertainty
        assert u is not None and u.level == 0.9 and "propagated from energy_per_spike_j" in u.method, name
        assert u.low < results[name].value < u.high, name
    on_chip = results["spikes_per_joule_on_chip"].uncertainty
    assert (float(on_chip.low), float(on_chip.high)) == pytest.approx((1 / 16e-18, 1 / 13e-18))
    sops = results["sops_per_w_wall_plug_assuming_synaptic_ratio"].uncertainty
    assert float(sops.high) == pytest.approx(1 / (0.1 * 13e-18 * 1000))
    # Without an interval handed on the bounds are NaN, and the method says so.
    bare = {s.record.name: s.record for s in Efficiency(energy_per_spike_j=14e-18).plan(PlanContext())
            if isinstance(getattr(s, "record", None), Result)}
    assert math.isnan(float(bare["spikes_per_joule_on_chip"].uncertainty.low))
    assert "no interval handed on" in bare["spikes_per_joule_on_chip"].uncertainty.method


def test_efficiency_tabulates_the_comparison_a_viewer_plots_by_default():
    energy = Efficiency(energy_per_spike_j=14e-18, synaptic_energy_ratio=0.2)
    _, tables = energy.declare()
    archived = [s.record for s in energy.plan(PlanContext()) if hasattr(s, "record")]
    rows = [r for r in archived if isinstance(r, TableRows)]
    assert [r.table for r in rows] == list(tables) == ["comparison"]
    columns = {name: values for name, (values, _units) in rows[0].columns.items()}
    assert list(columns["system"]) == list(range(1 + len(REFERENCE_FIGURES)))
    assert columns["energy_per_synaptic_event_j"][0] == pytest.approx(0.2 * 14e-18)
    assert list(columns["energy_per_synaptic_event_j"][1:]) == [f.energy_per_synaptic_event_j for f in REFERENCE_FIGURES]
    assert columns["sops_per_w"][0] == pytest.approx(1 / (0.2 * 14e-18))
    names = next(r.value for r in archived if isinstance(r, Result) and r.name == "comparison_systems")
    assert names.startswith("0: this chip") and all(f"{k}: {f.platform}" in names
                                                     for k, f in enumerate(REFERENCE_FIGURES, start=1))
