"""The main job end to end: a whole campaign on the emulated station (reduced trial counts),
real drivers over the in-process pyvisa backend, archives and report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np

from lab.app.campaign import run_campaign
from lab.app.report.runs import load_run

REDUCED = {
    "cooldown": {"log_duration_s": 60.0, "hold_s": 10.0, "timeout_s": 900.0},
    "iv_sweep": {"switching_events": 40, "pilot_points": 20},
    "strength_duration": {"widths_s": (2e-9, 5e-9, 10e-9), "trials_max": 20, "threshold_precision": 0.05,
                          "reference_captures": 4},
    "refractory": {"spacings": 6, "trials": 3, "trials_max": 30, "reference_captures": 4},
    "firing_rate": {"points": 4, "captures": 2, "settle_records": 1, "refine_steps": 1},
    "energy_per_spike": {"spikes": 10, "reference_captures": 6},
}


def test_emulated_campaign_completes_every_run_and_reports(tmp_path, private_station):
    outcome = run_campaign(private_station, tmp_path / "runs", show_progress=False, overrides=REDUCED)
    problems = {name: f"{run.exit_status}: {run.message}" for name, run in outcome.outcomes.items()
                if run.exit_status != "completed"}
    assert not problems and not outcome.not_run, (problems, outcome.not_run)
    assert outcome.all_completed and len(outcome.outcomes) == 7
    report = outcome.report_path.read_text()
    for name, run in outcome.outcomes.items():
        assert run.archive_path.exists() and run.archive_path.name in report
        assert load_run(run.archive_path).status == "completed"
    energy = outcome.outcomes["energy_per_spike"].results["energy_per_spike_j"].value
    assert 1e-19 < energy < 1e-15            # attojoules to femtojoules, as the chip dissipates
    assert len(list((tmp_path / "runs" / "figures").rglob("*.png"))) == 8
    assert_results_as_before(outcome)


#: Every result the campaign above archived, as main 53b728c (before the restructure of
#: issue 11) archived it for the same seeds: the restructure changes no measured figure.
RESULTS_BEFORE = Path(__file__).parent / "data" / "campaign_results_53b728c.json"
#: Results that follow the emulated stage's temperature, which the emulator advances with the
#: wall clock (600x): they differ from run to run by a few mK, restructure or not (more on a
#: loaded machine, where the cooldown's first readings come later: within 5 %).
FOLLOW_WALL_CLOCK = {("cooldown", "results/stable_temperature_k"), ("cooldown", "results/temperature_log_k"),
                     ("efficiency", "results/carnot_overhead_w_per_w")}

#: Runs whose figures integrate V·I over spikes whose shape follows the wires' switching current
#: at the stage temperature of that moment: on a loaded machine the wall-clock stage has moved a
#: little further by then (measured: 1e-4 relative, the same on the code from before the change).
INTEGRATE_AT_STAGE_TEMPERATURE = {"energy_per_spike", "efficiency"}


def archived_results(path: Path) -> dict[str, object]:
    found: dict[str, object] = {}
    with h5py.File(path, "r") as archive:
        def visit(name: str, item) -> None:
            if isinstance(item, h5py.Dataset) and name.startswith("results/"):
                value = item[()]
                found[name] = (value.decode() if isinstance(value, bytes)
                               else np.asarray(value).tolist() if np.asarray(value).dtype.kind in "fiub"
                               else [str(v) for v in np.ravel(value)])
        archive["entry"].visititems(visit)
    return found


def same(a, b, rel: float) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(
            same(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if rel and isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=rel)
    return a == b


def assert_results_as_before(outcome) -> None:
    before = json.loads(RESULTS_BEFORE.read_text())
    assert set(outcome.outcomes) == set(before)
    differences = []
    for run_name, results_before in before.items():
        now = archived_results(outcome.outcomes[run_name].archive_path)
        for name in sorted(set(now) | set(results_before)):
            rel = (5e-2 if (run_name, name) in FOLLOW_WALL_CLOCK
                   else 1e-3 if run_name in INTEGRATE_AT_STAGE_TEMPERATURE else 0.0)
            if name not in now or name not in results_before or not same(now[name], results_before[name], rel):
                differences.append(f"{run_name} {name}: before {str(results_before.get(name))[:80]}, "
                                   f"now {str(now.get(name))[:80]}")
    assert not differences, "\n".join(differences)
