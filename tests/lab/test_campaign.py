"""Campaign logic: dependencies after a failure, Ctrl-C, hand-offs, refusal before any
instrument is opened. The Runner is replaced by one that reports chosen outcomes; the plans
are the real procedures dry-run on a copy of the emulated station."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from tqdm import tqdm

from contracts import steps
from lab.app import campaign
from contracts.files.station import read_station
from contracts.envelope import EnvelopeError
from contracts.procedure import PlanContext
from contracts.records import Axis, Result
from lab.execution.dry_run import dry_run, step_text
from lab.execution.progress import CampaignProgress
from lab.execution.runner import RunOutcome

ROOT = Path(__file__).resolve().parents[2]
EMULATED = ROOT / "stations" / "emulated.yaml"


class ScriptedRunner:
    """Returns the exit status scripted per procedure; records what it was asked to run."""

    def __init__(self, statuses: dict[str, str], results: dict[str, dict] | None = None):
        self.statuses, self.results, self.ran, self.planned = statuses, results or {}, [], {}

    def run(self, procedure, planned=None):
        self.ran.append(procedure)
        self.planned[procedure.name] = planned
        status = self.statuses.get(procedure.name, "completed")
        return RunOutcome(f"run-{procedure.name}", Path(f"{procedure.name}.h5"), status, "",
                          self.results.get(procedure.name, {}))


def run_all(runner, only=None):
    station = read_station(EMULATED)
    planned = campaign.plan_campaign(station, campaign.selected(only))
    outcome = campaign.CampaignOutcome(Path("."))
    campaign._run_all(planned, runner, station, {}, {}, outcome, tqdm(disable=True))
    return outcome


def test_a_failed_procedure_stops_only_what_depends_on_it():
    outcome = run_all(ScriptedRunner({"strength_duration": "failed"}))
    assert list(outcome.outcomes) == ["cooldown", "iv_sweep", "strength_duration"]
    skipped = dict(outcome.not_run)
    assert set(skipped) == {"refractory", "firing_rate", "energy_per_spike", "efficiency"}
    assert "strength_duration, which failed" in skipped["refractory"]
    assert "energy_per_spike, which did not run" in skipped["efficiency"]
    assert not outcome.all_completed


def test_a_failure_nothing_depends_on_lets_the_campaign_go_on():
    outcome = run_all(ScriptedRunner({"iv_sweep": "failed"}))
    assert len(outcome.outcomes) == 7 and not outcome.not_run
    assert not outcome.all_completed


def test_ctrl_c_ends_the_campaign_after_the_aborted_run():
    runner = ScriptedRunner({"refractory": "aborted"})
    outcome = run_all(runner)
    assert [p.name for p in runner.ran] == ["cooldown", "iv_sweep", "strength_duration", "refractory"]
    assert outcome.interrupted
    assert all("interrupted" in why for _, why in outcome.not_run) and len(outcome.not_run) == 3
    assert any("completed before that: cooldown, iv_sweep, strength_duration" in r
               for r in campaign._remarks(outcome))


def test_measured_thresholds_are_handed_forward():
    widths = np.array([16e-9, 32e-9])
    measured = {"strength_duration": {
        "threshold_a": Result("threshold_a", np.array([27e-6, 24e-6]), "A", Axis("width_s", widths, "s")),
        "rheobase_a": Result("rheobase_a", 21e-6, "A")}}
    runner = ScriptedRunner({}, measured)
    run_all(runner)
    built = {p.name: p.parameters for p in runner.ran}
    assert built["refractory"].threshold_a == pytest.approx(27e-6)
    assert built["energy_per_spike"].threshold_a == pytest.approx(27e-6)
    assert built["firing_rate"].current_max_a == pytest.approx(42e-6)


def test_each_run_takes_a_dry_run_of_its_own_parameters_planned_again_once_its_hand_offs_are_in():
    """The Runner dry-runs a procedure again before it runs, unless the campaign hands it a dry
    run of the very same parameters: the plan's, or one made again as soon as the runs it takes
    hand-offs from have ended (the campaign's time left then counts the plan it will walk). A
    hand-off's new amplitudes are thus always checked (and refused outside the envelope) before
    an instrument sees them."""
    measured = {"strength_duration": {
        "threshold_a": Result("threshold_a", np.array([27e-6, 24e-6]), "A", Axis("width_s", np.array([16e-9, 32e-9]), "s")),
        "rheobase_a": Result("rheobase_a", 21e-6, "A")}}
    runner = ScriptedRunner({}, measured)
    station = read_station(EMULATED)
    planned = campaign.plan_campaign(station, campaign.selected(None))
    original = list(planned)
    progress = CampaignProgress.of([(r.name, 1.0, 0.5) for r in planned], now_s=0.0)
    campaign._run_all(planned, runner, station, {}, {}, campaign.CampaignOutcome(Path(".")), tqdm(disable=True),
                      progress=progress)
    handed = {"refractory", "firing_rate", "energy_per_spike"}
    assert [p.name for p in runner.ran] == [run.name for run in original]
    for before, after, ran in zip(original, planned, runner.ran):
        assert runner.planned[ran.name] is after.dry_run, ran.name
        assert after.procedure.parameter_records() == ran.parameter_records()
        assert (after is not before) == (ran.name in handed), ran.name
        if ran.name in handed:     # the plan of the handed-on parameters, not the one planned first
            again = dry_run(ran, station, PlanContext(chip_design={}, dry_run=True))
            assert listed(after.dry_run) == listed(again) != listed(before.dry_run), ran.name
    # energy_per_spike, handed a threshold, plans no search of its own: fewer captures.
    index = [r.name for r in planned].index("energy_per_spike")
    assert planned[index].dry_run.count(steps.Capture) < original[index].dry_run.count(steps.Capture)


def listed(report) -> list[str]:
    """A dry run's steps as text, in any order (refractory's dry run shuffles its pairs)."""
    return sorted(step_text(step, width=10_000) for step, _ in report.steps)


def test_a_hand_off_the_dry_run_refuses_leaves_the_run_to_be_refused_at_its_start():
    measured = {"strength_duration": {
        "threshold_a": Result("threshold_a", np.array([900e-6, 800e-6]), "A",
                              Axis("width_s", np.array([16e-9, 32e-9]), "s")),
        "rheobase_a": Result("rheobase_a", 700e-6, "A")}}
    runner = ScriptedRunner({}, measured)
    station = read_station(EMULATED)
    planned = campaign.plan_campaign(station, campaign.selected(["cooldown", "strength_duration", "energy_per_spike"]))
    original = list(planned)
    campaign._run_all(planned, runner, station, {}, {}, campaign.CampaignOutcome(Path(".")), tqdm(disable=True))
    assert planned[-1] is original[-1]                 # kept as first planned
    assert runner.planned["energy_per_spike"] is None  # so the Runner dry-runs it, and refuses it
    with pytest.raises(EnvelopeError):
        dry_run(runner.ran[-1], station, PlanContext(chip_design={}, dry_run=True))


def test_everything_completed_is_all_completed():
    assert run_all(ScriptedRunner({})).all_completed
    assert run_all(ScriptedRunner({}), only=["cooldown", "efficiency"]).all_completed


def test_out_of_envelope_plan_is_refused_before_any_instrument_opens(tmp_path, monkeypatch):
    tree = yaml.safe_load(EMULATED.read_text())
    tree["chip"] = str((EMULATED.parent / tree["chip"]).resolve())
    tree["instruments"]["pulser"]["envelope"]["pulse_current_max_a"] = 1e-6
    station = tmp_path / "station.yaml"
    station.write_text(yaml.safe_dump(tree))
    opened = []
    import lab.execution.instruments

    monkeypatch.setattr(lab.execution.instruments, "open_instruments", lambda *a, **k: opened.append(a))
    with pytest.raises(EnvelopeError, match="pulse_current_max_a"):
        campaign.run_campaign(station, tmp_path / "out", show_progress=False)
    assert opened == [] and not (tmp_path / "out").exists()


def test_unknown_procedure_and_override_are_refused():
    with pytest.raises(campaign.CampaignError, match="unknown procedure 'spike'"):
        campaign.selected(["spike"])
    station = read_station(EMULATED)
    with pytest.raises(campaign.CampaignError, match="unknown procedure 'ivsweep'"):
        campaign.plan_campaign(station, campaign.selected(None), {"ivsweep": {"switching_events": 3}})
