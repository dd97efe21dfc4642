"""Progress estimates (lab/execution/progress.py): the wall-time model of steps, a run's fraction
and time left, the campaign's; and, on the emulated station, the campaign's time left against
the time that actually remained."""

from __future__ import annotations

import math

import pytest

from contracts import steps
from lab.execution import progress
from lab.execution.dry_run import DryRunReport, dry_run
from lab.execution.progress import CampaignProgress, RunProgress, WallModel, clock_text, expected_wall_s
from procedures.iv_sweep import IvSweep


# --- the wall-time model ---------------------------------------------------------------------
def test_a_steps_wall_time_is_its_lab_time_over_the_acceleration_plus_what_it_costs_besides():
    model = WallModel(acceleration=600.0)
    assert model.step_s(steps.Wait(60.0), 60.0) == pytest.approx(0.1 + progress.INSTRUMENT_STEP_S)
    # Bias ramps pass in real time, whatever the clock.
    assert model.step_s(steps.SetBias(10e-6, 1e-5), 1.0) == pytest.approx(1.0 + progress.INSTRUMENT_STEP_S)
    sweep = steps.SweepBias(levels_a=(1e-6,) * 100, dwell_s=1e-3)
    assert model.step_s(sweep, 0.1) == pytest.approx(0.1 / 600 + progress.INSTRUMENT_STEP_S
                                                     + 100 * progress.SWEEP_LEVEL_S)
    # A capture transfers the record its set-up asked for: every node and the input monitor.
    model.step_s(steps.ConfigureCapture({"m": 1.0, "c": 1.0}, 1e-4, 5000, 1e10, 1e-9), 0.0)
    assert model.step_s(steps.Capture(), 0.0) == pytest.approx(progress.INSTRUMENT_STEP_S
                                                               + 15000 * progress.RECORD_SAMPLE_S)
    assert model.step_s(steps.Progress(0.5), 0.0) == model.step_s(steps.Note({}), 0.0) == 0.0
    # One on the chip's own trigger may wait its whole timeout, lab time like every step's: the
    # model takes it.
    assert model.step_s(steps.Capture(fire=False, timeout_s=0.05), 0.0) == pytest.approx(
        progress.INSTRUMENT_STEP_S + 15000 * progress.RECORD_SAMPLE_S + 0.05 / 600)


def test_a_runs_expected_wall_time_adds_its_fixed_cost_to_its_steps():
    report = DryRunReport("x", [(steps.Wait(6.0), 6.0), (steps.Progress(1.0), 0.0)])
    assert expected_wall_s(report, 6.0) == pytest.approx(1.0 + progress.INSTRUMENT_STEP_S + progress.RUN_OVERHEAD_S)


# --- one run ---------------------------------------------------------------------------------
def test_the_fraction_follows_the_plans_reports_and_the_steps_between_them_and_never_goes_back():
    run = RunProgress(steps_s=10.0, prior_s=10.0, now_s=0.0)
    run.step_done(2.0, 1.0)
    assert run.fraction == pytest.approx(0.2)                    # no report yet: the dry run's share
    run.reported(0.5, "5 of 10 things", 2.0)
    assert run.fraction == pytest.approx(0.5) and run.message == "5 of 10 things"
    run.step_done(4.0, 3.0)                                      # half of what the dry run left (8 s)
    assert run.fraction == pytest.approx(0.75)
    run.reported(0.1, "", 4.0)                                   # a plan that reports less: kept
    assert run.fraction == pytest.approx(0.75)
    run.step_done(100.0, 5.0)                                    # beyond the dry run: not done yet
    assert run.fraction < 1.0
    run.end(6.0)
    assert run.fraction == 1.0 and run.left_s(7.0) == 0.0 and run.elapsed_s(9.0) == 6.0


def test_between_reports_the_fraction_heads_for_the_dry_runs_next_report_and_stops_short_of_it():
    report = DryRunReport("x", [(steps.Wait(5.0), 5.0), (steps.Progress(0.5), 0.0),
                                (steps.Wait(5.0), 5.0), (steps.Progress(1.0), 0.0)])
    marks = progress.report_marks(report, 1.0)
    step_s = progress.INSTRUMENT_STEP_S + 5.0
    assert marks == [(pytest.approx(step_s), 0.5), (pytest.approx(2 * step_s), 1.0)]
    run = RunProgress(steps_s=2 * step_s, prior_s=2 * step_s, now_s=0.0, marks=marks)
    run.step_done(step_s / 2, 1.0)
    assert run.fraction == pytest.approx(0.25)
    run.step_done(10 * step_s, 2.0)          # the plan's steps take longer than its dry run's
    assert run.fraction == pytest.approx(0.5 * progress.FRACTION_BEFORE_REPORT)
    run.reported(0.5, "half", 3.0)
    run.step_done(10 * step_s, 4.0)
    assert run.fraction == pytest.approx(0.5 + 0.5 * progress.FRACTION_BEFORE_REPORT)   # not done before it says so
    run.reported(1.0, "all", 5.0)
    assert run.fraction == pytest.approx(progress.FRACTION_BEFORE_END)


def test_time_left_starts_from_the_estimate_and_follows_the_measured_rate():
    run = RunProgress(steps_s=100.0, prior_s=50.0, now_s=0.0)
    assert run.left_s(0.0) == pytest.approx(50.0)                # nothing done: the estimate
    for second in range(1, 21):                                  # 1 % a second: 100 s in all
        run.step_done(1.0, float(second))
    trust = 0.2 / progress.TRUST_FRACTION                         # blended while little is done
    assert run.left_s(20.0) == pytest.approx(80.0 ** trust * 40.0 ** (1 - trust))
    for second in range(21, 81):
        run.step_done(1.0, float(second))
    assert run.left_s(80.0) == pytest.approx(20.0, rel=0.15)     # the measured rate has taken over


def test_the_rate_is_that_of_the_recent_window_not_of_the_first_steps():
    run = RunProgress(steps_s=100.0, prior_s=100.0, now_s=0.0)
    run.step_done(10.0, 0.1)                                     # a quick first tenth
    for second in range(1, 41):                                  # then 1 % every 2 s
        run.step_done(1.0, 0.1 + 2.0 * second)
    now_s = 0.1 + 80.0
    true_left_s = 2.0 * (100 - 50)
    assert run.measured_left_s(now_s) == pytest.approx(true_left_s, rel=0.05)
    assert run.left_s(now_s) == pytest.approx(true_left_s, rel=0.1)


def test_a_slow_stretch_of_a_quarter_of_the_run_does_not_take_over_its_time_left():
    """An even pace (1 % a second for 60 s), then 20 s that move it 2 % (a level whose steps
    cost more, as above the f-I onset): the time left stays within 1.5x of the pace's (38 s)."""
    run = RunProgress(steps_s=100.0, prior_s=100.0, now_s=0.0)
    for second in range(1, 61):
        run.step_done(1.0, float(second))
    for step in range(1, 11):
        run.step_done(0.2, 60.0 + 2.0 * step)
    assert run.fraction == pytest.approx(0.62)
    assert 38.0 < run.measured_left_s(80.0) < 1.5 * 38.0


def test_a_long_step_without_progress_makes_the_time_left_grow():
    run = RunProgress(steps_s=10.0, prior_s=10.0, now_s=0.0)
    for second in range(1, 6):
        run.step_done(1.0, float(second))
    assert run.measured_left_s(20.0) > run.measured_left_s(5.0)


# --- the campaign ----------------------------------------------------------------------------
def report_of(wait_s: float) -> DryRunReport:
    return DryRunReport("x", [(steps.Wait(wait_s), wait_s)])


def steps_of(wait_s: float) -> float:
    return progress.steps_wall_s(report_of(wait_s), 1.0)


def run_steps(run: RunProgress, expected_s: list[float], wall_s: float, now_s: float) -> float:
    """The steps carried out (waits, as `report_of` plans), each taking `wall_s`; returns the
    time after the last."""
    for step_s in expected_s:
        now_s += wall_s
        run.step_done(step_s, now_s, "Wait")
    return now_s


def test_runs_to_come_take_their_steps_at_the_rate_measured_and_the_costs_runs_measured_besides():
    a, b, c = steps_of(10.0), steps_of(20.0), steps_of(30.0)
    campaign = CampaignProgress.of([("a", {"Wait": a}), ("b", {"Wait": b}, 0.5), ("c", {"Wait": c})], now_s=0.0)
    fixed_s = progress.RUN_HEAD_S + progress.RUN_TAIL_S
    assert campaign.left_s(0.0) == pytest.approx(a + b + c + 3 * fixed_s + 0.5)
    assert campaign.fraction(0.0) == 0.0
    run = campaign.start("a", report_of(10.0), 1.0, 0.0)
    run.steps_begin(1.0)                                         # 1 s before its first step
    now_s = run_steps(run, [a / 4] * 4, a, 1.0)                  # each step four times as slow
    campaign.end("a", completed=True, now_s=now_s + 0.3)          # 0.3 s after its last
    # Four times as slow over `a` s expected: the measured ratio, drawn toward 1 by RATE_PRIOR_S.
    pooled = (4 * a + progress.RATE_PRIOR_S) / (a + progress.RATE_PRIOR_S)
    assert campaign.rates.ratio == pytest.approx(pooled)
    # b and c have steps of a's kind: that kind's ratio, drawn toward the pooled one.
    ratio = (4 * a + progress.RATE_PRIOR_S * pooled) / (a + progress.RATE_PRIOR_S)
    assert campaign.rates.ratio_of("Wait") == pytest.approx(ratio)
    head_s, tail_s = (1.0 + progress.RUN_HEAD_S) / 2, (0.3 + progress.RUN_TAIL_S) / 2
    assert campaign.head_s == pytest.approx(head_s) and campaign.tail_s == pytest.approx(tail_s)
    # b's dry run (0.5 s, timed at planning) comes before its steps.
    end_s = now_s + 0.3
    assert campaign.left_s(end_s) == pytest.approx(ratio * (b + c) + 2 * (head_s + tail_s) + 0.5)
    # 2 s between a and b (a report writer started): expected again before c, shrunk toward none.
    campaign.start("b", report_of(20.0), 1.0, end_s + 2.0)
    assert campaign.gap_s == pytest.approx(1.0)
    assert campaign.left_s(end_s + 2.0) == pytest.approx(
        ratio * b + 0.5 + head_s + tail_s + 1.0 + ratio * c + head_s + tail_s)
    assert campaign.position() == (2, 3)


def test_runs_to_come_take_each_kind_of_step_at_the_rate_measured_for_that_kind():
    # Run a: sweeps four times as slow as the model, captures twice as fast. Run b has only
    # captures: it is expected quick, where one rate over all steps would make it slow.
    campaign = CampaignProgress.of([("a", {"SweepBias": 10.0, "Capture": 10.0}), ("b", {"Capture": 10.0}),
                                    ("c", {"Wait": 10.0})], now_s=0.0)
    run = campaign.start("a", DryRunReport("a", []), 1.0, 0.0)
    run.steps_begin(0.0)
    for second in range(10):
        run.step_done(1.0, 4.0 * second + 4.0, "SweepBias")
    for second in range(10):
        run.step_done(1.0, 40.0 + 0.5 * second + 0.5, "Capture")
    campaign.end("a", completed=True, now_s=45.0)
    prior_s = progress.RATE_PRIOR_S
    pooled = (45.0 + prior_s) / (20.0 + prior_s)
    assert campaign.rates.ratio == pytest.approx(pooled)
    assert campaign.rates.ratio_of("Capture") == pytest.approx((5.0 + prior_s * pooled) / (10.0 + prior_s))
    assert campaign.rates.ratio_of("SweepBias") == pytest.approx((40.0 + prior_s * pooled) / (10.0 + prior_s))
    b, c = campaign.planned[1], campaign.planned[2]
    assert campaign.expected_s(b) - campaign.expected_s(c) == pytest.approx(
        10.0 * (campaign.rates.ratio_of("Capture") - pooled))       # a kind not yet seen: the pooled ratio
    assert campaign.expected_s(b) < campaign.expected_s(c) / 2


def test_a_dry_run_the_hand_offs_made_longer_is_not_expected_of_the_runs_to_come():
    # b's dry run took 0.5 s at planning and 2.5 s at its start (the hand-offs changed its plan):
    # the 2 s more belong to b, not to every run's fixed cost.
    campaign = CampaignProgress.of([("a", 1.0), ("b", 1.0, 0.5), ("c", 1.0)], now_s=0.0)
    run = campaign.start("b", report_of(1.0), 1.0, 0.0, dry_run_s=2.5)
    assert run.left_s(0.0) == pytest.approx(run.prior_s)
    assert campaign.planned[1].dry_run_s == 2.5
    run.steps_begin(2.6)                                         # 0.1 s besides its dry run
    campaign.end("b", completed=True, now_s=run_steps(run, [steps_of(1.0)], steps_of(1.0), 2.6))
    assert campaign.heads_s == [pytest.approx(0.1)]
    # Without the measured dry run the 2 s would have been counted as b's fixed cost.
    unmeasured = CampaignProgress.of([("b", 1.0, 0.5), ("c", 1.0)], now_s=0.0)
    run = unmeasured.start("b", report_of(1.0), 1.0, 0.0)
    run.steps_begin(2.6)
    unmeasured.end("b", completed=True, now_s=run_steps(run, [steps_of(1.0)], steps_of(1.0), 2.6))
    assert unmeasured.heads_s == [pytest.approx(2.1)]


def test_an_adaptive_run_that_ends_early_does_not_make_the_runs_to_come_look_quick():
    # The dry run plans for the most (10 steps); the run stops after 3, each as slow as expected.
    campaign = CampaignProgress.of([("adaptive", 10.0), ("next", 10.0)], now_s=0.0)
    report = DryRunReport("adaptive", [(steps.Wait(1.0), 1.0)] * 10)
    run = campaign.start("adaptive", report, 1.0, 0.0)
    run.steps_begin(0.0)
    expected_s = progress.steps_wall_s(report, 1.0) / 10
    now_s = run_steps(run, [expected_s] * 3, expected_s, 0.0)
    campaign.end("adaptive", completed=True, now_s=now_s)
    assert campaign.rates.ratio == pytest.approx(1.0)


def test_a_run_reported_by_its_plan_is_timed_by_its_reports_not_by_its_dry_runs_count():
    # The dry run expects 100 s (its most); the plan reports a tenth done every second.
    run = RunProgress(steps_s=100.0, prior_s=100.0, now_s=0.0)
    run.steps_begin(0.0)
    for second in range(1, 6):
        run.step_done(1.0, float(second))
        run.reported(second / 10, f"{second} of 10", float(second))
    assert run.measured_left_s(5.0) == pytest.approx(5.0)
    assert run.left_s(5.0) < 2 * 5.0                              # the dry run's 50 s left hardly weighs


def test_a_run_never_started_before_a_later_one_was_skipped():
    campaign = CampaignProgress.of([("a", 1.0), ("b", 2.0), ("c", 3.0)], now_s=0.0)
    campaign.start("c", report_of(3.0), 1.0, 0.0)
    assert [p.state for p in campaign.planned] == ["skipped", "skipped", "running"]
    assert campaign.left_s(0.0) == pytest.approx(expected_wall_s(report_of(3.0), 1.0))
    assert campaign.position() == (3, 3)


def test_a_run_that_never_began_its_steps_measures_no_costs():
    campaign = CampaignProgress.of([("a", 1.0), ("b", 1.0)], now_s=0.0)
    campaign.start("a", report_of(1.0), 1.0, 0.0)
    campaign.end("a", completed=False, now_s=0.01)
    assert campaign.rates.ratio == 1.0 and campaign.heads_s == [] and campaign.tails_s == []


def test_the_running_runs_time_left_holds_its_ending():
    run = RunProgress(steps_s=1.0, prior_s=2.0, now_s=0.0, head_s=0.5, tail_s=0.5)
    assert run.left_s(0.0) == pytest.approx(2.0)                 # not begun: the whole run
    run.steps_begin(0.5)
    assert run.left_s(0.5) == pytest.approx(1.5)                 # its steps and its ending
    run.step_done(1.0, 1.5)
    assert run.left_s(1.5) == pytest.approx(0.5, abs=0.01)              # its ending only


def test_times_read_as_a_person_reads_them():
    assert clock_text(59.6) == "01:00" and clock_text(3725) == "1:02:05" and clock_text(-3) == "00:00"


def test_iv_sweep_reports_switching_events_of_events_wanted_up_to_one(station_for_dry_runs):
    fractions = [s.fraction for s, _ in dry_run(IvSweep(switching_events=40), station_for_dry_runs).steps
                 if isinstance(s, steps.Progress)]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)


def test_iv_sweeps_dry_run_plans_windows_of_the_runs_size_after_its_search(station_for_dry_runs):
    # Its stand-in readings switch nowhere, so the dry run sweeps its most (events never come);
    # each sweep after the search still climbs a window of the size the run's will be, not the
    # search's 20 levels (which made the campaign's I-V prior twice the run's).
    plan = IvSweep(switching_events=200)
    p = plan.parameters
    sweeps = [len(s.levels_a) for s, _ in dry_run(plan, station_for_dry_runs).steps if isinstance(s, steps.SweepBias)]
    window_levels = math.ceil((p.window_below_sigmas + p.window_above_sigmas) / p.step_sigmas) + 1
    batches = sweeps[p.pilot_sweeps + 1:-1]                    # after the pilots and the search's batch
    assert batches and all(levels <= p.sweeps_per_step * (window_levels + 4) for levels in batches)
    assert sweeps[p.pilot_sweeps] > p.search_sweeps * p.search_points     # the search itself as planned


@pytest.fixture
def station_for_dry_runs(private_station):
    from lab.execution.station_checks import load_station
    return load_station(private_station)


# How close the campaign's time left comes on the emulated station is a timing figure, measured
# by benchmarks/progress_estimate.py (a shared machine's load moves it), not asserted here.


def test_a_wait_for_a_report_the_plan_is_late_with_does_not_drag_the_rate_down():
    """An adaptive search taking more trials than its dry run planned: the fraction waits short
    of the next report while the steps go on, and the rate stays the one measured before the wait."""
    report = DryRunReport("x", [(steps.Wait(5.0), 5.0), (steps.Progress(0.5), 0.0),
                                (steps.Wait(5.0), 5.0), (steps.Progress(1.0), 0.0)])
    marks = progress.report_marks(report, 1.0)
    step_s = marks[0][0]
    run = RunProgress(steps_s=2 * step_s, prior_s=2 * step_s, now_s=0.0, marks=marks)
    for second in range(1, 10):                                  # a tenth of the way a second
        run.step_done(step_s / 10, float(second))
    before_s = run.measured_left_s(9.0)
    for second in range(10, 40):                                 # the search goes on past its plan
        run.step_done(step_s / 10, float(second))
    assert run.fraction == pytest.approx(0.5 * progress.FRACTION_BEFORE_REPORT)
    assert run.measured_left_s(39.0) == pytest.approx(before_s)  # not 4x longer for the wait
    run.reported(0.5, "half", 40.0)                              # the report: the rate is measured again
    run.step_done(step_s / 10, 41.0)
    assert run.measured_left_s(41.0) > before_s
