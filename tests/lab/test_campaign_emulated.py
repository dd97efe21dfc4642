"""The main job end to end: a whole campaign on the emulated station (reduced trial counts),
real drivers over the in-process pyvisa backend, archives and report."""

from __future__ import annotations

from lab.app.campaign import run_campaign
from lab.app.report.runs import load_run

REDUCED = {
    "cooldown": {"log_duration_s": 60.0, "hold_s": 10.0, "timeout_s": 900.0},
    "iv_sweep": {"switching_events": 40, "pilot_points": 20},
    "strength_duration": {"widths_s": (2e-9, 5e-9, 10e-9), "trials": 3, "bisection_steps": 6,
                          "reference_captures": 4},
    "refractory": {"spacings": 6, "trials": 3, "reference_captures": 4},
    "firing_rate": {"points": 4, "captures": 1},
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
