"""I–V sweep and switching-current statistics at the chip's bias port, with hardware sweeps.

What is measured: the voltage across the *bias port* (node c of the neuron) against the DC
current forced into it, line resistance removed. That current divides between the branches
in inverse proportion to their inductances (physics reference §1.3); the port turns resistive
where both wires carry their I_sw at once (I_sw,m + I_sw,c on the default neuron; the first
wire's switch alone only moves current into the loop as trapped flux, at 0 V). The figures
below are port currents, not a single wire's I_sw.

Every reading comes from a `SweepBias`: the source steps through a list itself, `dwell_s` per
level, one reading per level, so no controller round trip sits between points. No step is
larger than ramp_a_per_s · dwell_s.

Plan:
1. `pilot_sweeps` sweeps 0 → bias_max → 0 (`pilot_points` levels each way): the I–V curve
   (table "iv_curve"), a first switching current (to one coarse step), the retrapping current
   (first level of the down-sweep back at ~0 V) and the resistive branch's dV/dI.
2. Fast sweeps, one switching event each (table "switching_events"), `sweeps_per_step` of them
   per SweepBias: climb through a window of levels around the switching current, then one step
   down to a reset level below retrapping. The event is the first window level that reads
   resistive, recorded at the midpoint of the step into it (a window step larger than
   ramp_a_per_s · dwell_s is filled in with levels whose readings are not used). The first `search_sweeps` use a
   fine window over the pilot's coarse step; later windows span mean − window_below_sigmas·σ
   to mean + window_above_sigmas·σ in steps of step_sigmas·σ, offset by a rotating fraction
   of a step (dither) so that the coarse grid does not bias the mean. The step and the grid's
   origin are fixed when the first such window is made (σ then comes from the search); later
   windows move by whole steps only. Every event after the search therefore lies on one grid,
   step / dither_phases apart, which the histogram's bins follow (procedures/analysis/switching.py).

Results: the mean of the recorded events (Student t interval; where the events spread less
than a step's rounding, σ < step/√12, the GUM combination with the step as uniform, since the
rounding then does not average out) and their spread (chi-square interval; it includes the
step's quantisation, about step²/12 in variance); a Gaussian fitted by
maximum likelihood to the events as observed, each a threshold inside its step and counted only
inside its window (profile-likelihood intervals; its width is the distribution's, without the
quantisation), with a Pearson chi-square goodness of fit over the histogram's bins.

Trapped flux, handled by recording it: after each event the port retraps at the reset level
with flux left in the loop, so the next climb starts from the chip's present flux state (on
the default neuron the flux shifts which wire switches transiently first, not the port's DC
switching current). A sweep is an event only if the reset reading before it was
superconducting and the switch came inside the window; a reset that still reads resistive
(the port did not retrap) makes the following sweep "latched": it is counted, not used, and
the bias is then brought to zero and back (no wire can stay resistive unbiased). Switches on
the step into the window ("below_window") or none within it ("above_window") are counted. A
sweep that never switched needs nothing more: switching is an escape, and the next climb is a
new trial whatever the last one survived.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from contracts import steps
from contracts.procedure import SWEEP_LEVELS_MAX, PlanContext, Procedure, parameter, refuse, too_little
from contracts.records import Axis, ColumnSpec, Result, TableRows, TableSpec, Uncertainty
from contracts.units import format_si
from procedures.analysis import iv
from procedures.analysis.statistics import (
    CONFIDENCE_LEVEL, correlated_mean_uncertainty, integrated_autocorrelation_time, std_uncertainty, summarize,
)
from procedures.analysis.switching import CensoredEvents, Grid, fit_gaussian, grid_histogram
from procedures.design import DesignHints


@dataclass(frozen=True)
class IvSweepParameters:
    switching_events: int = parameter(1000, unit="1", doc="switching events to collect", minimum=1, maximum=100_000)
    pilot_sweeps: int = parameter(2, unit="1", doc="full up/down sweeps for the I-V curve", minimum=1, maximum=100)
    pilot_points: int = parameter(40, unit="1", doc="levels per pilot sweep direction", minimum=4, maximum=2000)
    bias_max_a: float = parameter(0.0, unit="A", doc="top of the pilot sweeps; 0 takes 1.1x the design "
                                  "switching current of the bias port", minimum=0.0, maximum=1e-3)
    dwell_s: float = parameter(2e-3, unit="s", doc="source delay per level of a sweep", minimum=50e-6, maximum=10.0)
    # At least 10 uA/s: with the shortest dwell a step is then >= 0.5 nA, so a sweep over the
    # envelope stays below ~1e5 levels (a slower ramp would ask the SMU for millions).
    ramp_a_per_s: float = parameter(1e-3, unit="A/s", doc="largest bias step over dwell_s", minimum=1e-5,
                                    maximum=1.0)
    search_sweeps: int = parameter(20, unit="1", doc="fast sweeps with the fine search window", minimum=5,
                                   maximum=10_000)
    search_points: int = parameter(20, unit="1", doc="levels of the search window", minimum=2, maximum=1000)
    window_below_sigmas: float = parameter(3.5, unit="1", doc="window start below the mean, in sigma", minimum=0.5,
                                           maximum=20.0)
    window_above_sigmas: float = parameter(2.5, unit="1", doc="window end above the mean, in sigma", minimum=0.0,
                                           maximum=20.0)
    step_sigmas: float = parameter(1.0, unit="1", doc="window step in sigma", minimum=0.05, maximum=10.0)
    dither_phases: int = parameter(5, unit="1", doc="window offsets (fractions of a step) in rotation",
                                   minimum=1, maximum=100)
    sweeps_per_step: int = parameter(25, unit="1", doc="fast sweeps per SweepBias", minimum=1, maximum=200)
    reset_margin_a: float = parameter(0.5e-6, unit="A", doc="reset this far below the retrapping current",
                                      minimum=0.0, maximum=1e-3)
    switched_v: float = parameter(10e-6, unit="V", doc="|V| above this means the port is resistive", minimum=1e-9,
                                  maximum=1.0)
    histogram_bins: int = parameter(0, unit="1", doc="about this many bins in the switching-current histogram, "
                                    "widths rounded to whole steps of the events' grid; 0 takes the "
                                    "Freedman-Diaconis width", minimum=0, maximum=10_000)


#: Levels in one switching window (the search window's maximum too).
WINDOW_LEVELS_MAX = 1000
#: Fraction of the requested switching events a run must collect (and at least 2, for a spread).
EVENTS_MIN_FRACTION = 0.5


def events_min(requested: int) -> int:
    """The fewest switching events a run may report: half the requested, at least 2 (1 if 1 asked)."""
    return min(requested, max(2, math.ceil(EVENTS_MIN_FRACTION * requested)))


def path_a(start_a: float, stop_a: float, max_step_a: float) -> np.ndarray:
    """Levels from start_a (excluded) to stop_a (included) in equal steps of at most max_step_a."""
    count = max(int(math.ceil(abs(stop_a - start_a) / max_step_a - 1e-9)), 1)
    return start_a + (stop_a - start_a) * np.arange(1, count + 1) / count


class IvSweep(Procedure):
    name = "iv_sweep"
    minimum_valid_data = ("a switch in the pilot sweeps, then half the requested switching events (at least 2) "
                          "with a finite mean and spread")
    Parameters = IvSweepParameters

    def declare(self, context: PlanContext | None = None):
        return None, {
            "iv_curve": TableSpec({"sweep": ColumnSpec("1", "i8"), "direction": ColumnSpec("1", "i8"),
                                   "bias_a": ColumnSpec("A"), "voltage_v": ColumnSpec("V")},
                                  axis="bias_a", signal="voltage_v"),
            "switching_events": TableSpec({"event": ColumnSpec("1", "i8"), "switching_current_a": ColumnSpec("A"),
                                           "step_a": ColumnSpec("A"), "readings": ColumnSpec("1", "i8"),
                                           "window_low_a": ColumnSpec("A"), "window_high_a": ColumnSpec("A")},
                                          axis="event", signal="switching_current_a"),
        }

    def check_parameters(self) -> None:
        p = self.parameters
        levels = math.ceil((p.window_below_sigmas + p.window_above_sigmas) / p.step_sigmas) + 1
        if levels > WINDOW_LEVELS_MAX:
            raise refuse(self.name, "window_below_sigmas, window_above_sigmas, step_sigmas",
                         f"a window of {levels:,} levels, above {WINDOW_LEVELS_MAX:,}")
        if p.bias_max_a:
            self._check_pilot(p.bias_max_a)

    def check_bound(self, context: PlanContext) -> None:
        self._check_pilot(self._top_a(DesignHints.from_chip(context.chip_design)))

    def _check_pilot(self, top_a: float) -> None:
        p = self.parameters
        levels = 2 * max(math.ceil(top_a / (p.ramp_a_per_s * p.dwell_s)), p.pilot_points)
        if levels > SWEEP_LEVELS_MAX:
            raise refuse(self.name, "bias_max_a, ramp_a_per_s, dwell_s",
                         f"a pilot sweep to {top_a:.4g} A in steps of ramp_a_per_s x dwell_s = "
                         f"{p.ramp_a_per_s * p.dwell_s:.4g} A has {levels:,} levels, above {SWEEP_LEVELS_MAX:,}")

    def _top_a(self, design: DesignHints) -> float:
        """The highest level of every sweep: bias_max_a, a hard ceiling when set."""
        return self.parameters.bias_max_a or 1.1 * design.switching_current_a

    def plan(self, context: PlanContext):
        p = self.parameters
        design = DesignHints.from_chip(context.chip_design)
        top_a = self._top_a(design)
        context.resolve(bias_max_a=top_a)
        max_step_a = p.ramp_a_per_s * p.dwell_s
        switches, retraps, branch, max_v = [], [], ([], []), [0.0]
        for sweep in range(p.pilot_sweeps):
            switch_a, retrap_a, (branch_a, branch_v) = yield from self._pilot(sweep, top_a, max_step_a, max_v)
            switches.append(switch_a)
            retraps.append(retrap_a)
            branch[0].extend(branch_a)
            branch[1].extend(branch_v)
            # No fraction of its own: the pilot's share of the run is the dry run's (the runner's estimate).
            yield steps.Progress(fraction=0.0, message=f"pilot sweep {sweep + 1} of {p.pilot_sweeps}")
        coarse_a = top_a / (p.pilot_points - 1)
        pilot_a = summarize(switches).mean
        if not math.isfinite(pilot_a) and not context.dry_run:
            # Nothing switched up to the top: windows there would only ever read "above".
            raise too_little(self.name, f"a switch in the pilot sweeps up to {format_si(top_a, 'A')} (bias_max_a)",
                             f"none in {p.pilot_sweeps} sweeps (largest |V| {max_v[0]:.3g} V, switched_v "
                             f"{p.switched_v:.3g} V)")
        pilot_a = min(pilot_a if math.isfinite(pilot_a) else design.switching_current_a, top_a)
        retrap_a = summarize(retraps).mean
        retrap_a = min(retrap_a if math.isfinite(retrap_a) else pilot_a - coarse_a, top_a)
        # The pilot brackets the switch within one coarse step below its first resistive level;
        # no level above the top (bias_max_a is the user's ceiling).
        search = np.clip(np.linspace(pilot_a - coarse_a, pilot_a, p.search_points), 0.0, top_a)
        # No σ below what the search's step can resolve (a spread it cannot see is not zero).
        sigma_floor_a = max(coarse_a / (p.search_points - 1) / math.sqrt(12.0), 1e-12)

        events: list[float] = []
        event_steps, event_windows = [], []
        grid = None     # (step, origin) of the windows after the search, fixed at the first
        counts = {"sweeps": 0, "latched": 0, "below_window": 0, "above_window": 0}
        level_a, reset_ok = 0.0, True
        lowered_a, missed = 0.0, False    # how far below retrap − margin resets go after missed retraps
        sweeps_max = 1.2 * p.switching_events + p.search_sweeps
        while len(events) < p.switching_events and counts["sweeps"] < sweeps_max:
            stats = summarize(events)
            if stats.count >= 5:
                mean_a, sigma_a = stats.mean, max(stats.std, sigma_floor_a)
            elif context.dry_run:
                # A dry run's stand-in readings switch nowhere: its windows after the search are
                # the run's size around the pilot's level, so that its levels (the time estimate)
                # are about the run's, not the search window's all along (2x as many).
                mean_a, sigma_a = pilot_a, sigma_floor_a
            else:
                mean_a = sigma_a = math.nan
            if grid is None and math.isfinite(sigma_a):
                grid = (p.step_sigmas * sigma_a, mean_a - p.window_below_sigmas * sigma_a)
            windows = [search if counts["sweeps"] + k < p.search_sweeps or not math.isfinite(sigma_a)
                       else self._window(mean_a, sigma_a, counts["sweeps"] + k, top_a, grid)
                       for k in range(p.sweeps_per_step)]
            reset_a = max(min(retrap_a - p.reset_margin_a - lowered_a, min(w[0] for w in windows)), 0.0)
            levels, spans = self._batch(level_a, reset_a, windows, max_step_a)
            volts = yield steps.SweepBias(levels_a=tuple(levels), dwell_s=p.dwell_s)
            resistive = np.abs(np.asarray(volts)) > p.switched_v
            for window, (start, kept, last) in zip(windows, spans):
                counts["sweeps"] += 1
                hit = np.flatnonzero(resistive[kept])
                if not reset_ok:
                    counts["latched"] += 1
                elif hit.size == 0 or hit[0] == 0:
                    counts["above_window" if hit.size == 0 else "below_window"] += 1
                else:
                    k = int(hit[0])
                    events.append(float(0.5 * (window[k - 1] + window[k])))
                    event_steps.append(float(window[k] - window[k - 1]))
                    event_windows.append((float(window[0]), float(window[-1])))
                    yield steps.Archive(TableRows("switching_events", {
                        "event": (np.array([len(events) - 1]), "1"),
                        "switching_current_a": (np.array([events[-1]]), "A"),
                        "step_a": (np.array([event_steps[-1]]), "A"),
                        "readings": (np.array([last - start + 1]), "1"),
                        "window_low_a": (np.array([window[0]]), "A"),
                        "window_high_a": (np.array([window[-1]]), "A")}))
                reset_ok = not resistive[last]
                # Not retrapped at the reset level: every later sweep of the batch starts resistive
                # (latched). The pilot reads retrapping to one coarse step, so its reset level can
                # lie above where fast sweeps retrap; later batches reset a margin lower. (The
                # emulated default chip's port retraps where it switches: 30-event runs, seeds
                # 1000-1004, latch in no sweep with or without this.)
                missed = missed or not reset_ok
            if missed:
                lowered_a += p.reset_margin_a
                missed = False
            level_a = float(levels[-1])
            if not reset_ok:   # not retrapped at the reset level: through zero bias and back
                yield steps.SweepBias(levels_a=tuple(np.concatenate([path_a(level_a, 0.0, max_step_a),
                                                                     path_a(0.0, reset_a, max_step_a)])),
                                      dwell_s=p.dwell_s)
                level_a, reset_ok = reset_a, True
            # Done when either count is reached: events wanted, or fast sweeps allowed.
            done = max(len(events) / p.switching_events, counts["sweeps"] / sweeps_max)
            yield steps.Progress(fraction=min(done, 1.0),
                                 message=f"{len(events)} of {p.switching_events} switching events")
        if level_a:
            yield steps.SweepBias(levels_a=tuple(path_a(level_a, 0.0, max_step_a)), dwell_s=p.dwell_s)
        if grid is not None:     # after the search: the windows' grid, divided by the dither
            events_grid = Grid(grid[0] / p.dither_phases, grid[1] + grid[0] / 2)
        else:                    # only search windows: their levels' middles
            events_grid = Grid(float(search[1] - search[0]), float(0.5 * (search[0] + search[1])))
        results, bins = self._results(events, event_steps, event_windows, events_grid, retraps, coarse_a,
                                      branch, counts)
        if not p.histogram_bins:
            context.resolve(histogram_bins=bins)
        for result in results:
            yield steps.Archive(result)
        # Minimum of valid data (the results above stay archived): enough events for a mean
        # and a spread.
        needed = events_min(p.switching_events)
        stats = summarize(events)
        if not context.dry_run and (len(events) < needed or not math.isfinite(stats.mean)
                                    or (needed > 1 and not math.isfinite(stats.std))):
            raise too_little(self.name, f"{needed} switching events with a finite mean and spread",
                             f"{len(events)} in {counts['sweeps']} fast sweeps ({counts['above_window']} above the "
                             f"window, {counts['below_window']} below it, {counts['latched']} latched)")

    # --- pieces of the plan ------------------------------------------------------------------
    def _pilot(self, sweep: int, top_a: float, max_step_a: float, max_v: list[float]):
        """One full sweep up and down; returns (switching, retrapping current, (bias, voltage) of the
        resistive branch's up-sweep points) and keeps the largest |V| read in max_v[0]."""
        p = self.parameters
        up_a = np.linspace(0.0, top_a, p.pilot_points)
        down_a = up_a[::-1]
        bias = np.concatenate([up_a, down_a])
        # Coarse pilot steps may exceed one ramp step: fill in levels, keep the readings we want.
        filled, keep, level_a = [], [], 0.0
        for target_a in bias:
            filled.extend(path_a(level_a, target_a, max_step_a) if target_a != level_a else [target_a])
            keep.append(len(filled) - 1)
            level_a = target_a
        volts = yield steps.SweepBias(levels_a=tuple(filled), dwell_s=p.dwell_s)
        volts = np.asarray(volts)[keep]
        max_v[0] = max(max_v[0], float(np.max(np.abs(volts))) if volts.size else 0.0)
        up_v, down_v = volts[:up_a.size], volts[up_a.size:]
        yield steps.Archive(TableRows("iv_curve", {
            "sweep": (np.full(bias.size, sweep), "1"),
            "direction": (np.concatenate([np.ones(up_a.size, int), -np.ones(down_a.size, int)]), "1"),
            "bias_a": (bias, "A"), "voltage_v": (volts, "V")}))
        switch_a = iv.switching_current_a(up_a, up_v, p.switched_v)
        # The down-sweep starts at the top, resistive if the port switched on the way up.
        retrap_a = iv.retrapping_current_a(down_a, down_v, p.switched_v)
        above = up_a >= switch_a if math.isfinite(switch_a) else np.zeros(up_a.size, bool)
        return switch_a, retrap_a, (up_a[above].tolist(), up_v[above].tolist())

    def _window(self, mean_a: float, sigma_a: float, sweep: int, top_a: float, grid) -> np.ndarray:
        """Levels from mean − below·σ (or up to a step above) to at least mean + above·σ, on the run's
        grid (step, origin) shifted by the sweep's dither offset (a fraction of a step)."""
        p = self.parameters
        step_a, origin_a = grid
        offset_a = step_a * (sweep % p.dither_phases) / p.dither_phases
        first = math.ceil((mean_a - p.window_below_sigmas * sigma_a - origin_a - offset_a) / step_a - 1e-9)
        span = (p.window_below_sigmas + p.window_above_sigmas) * sigma_a / step_a
        count = min(int(math.ceil(span - 1e-9)) + 1, WINDOW_LEVELS_MAX)
        return np.clip(origin_a + offset_a + step_a * (first + np.arange(count)), 0.0, top_a)

    @staticmethod
    def _batch(level_a: float, reset_a: float, windows, max_step_a: float):
        """One list for several fast sweeps: [to window, window, down to reset] each, window steps
        larger than max_step_a filled in (the ramp holds inside windows too). Returns the levels
        and, per sweep, the index of its first level, those of its window levels and that of its
        reset reading."""
        levels, spans = [], []
        for window in windows:
            start = len(levels)
            kept = []
            below_a = 2 * window[0] - window[1] if len(window) > 1 else level_a
            if level_a < below_a:
                # Arrive one window step below the window, not with a ramp step onto its first
                # level: a µA step can make the wire holding trapped flux switch, and the burst
                # that moves the flux out can end on the port's cycle. (The emulated default
                # chip's bursts die out: 1000-event runs, seeds 20261124 and 1000, have 0 and 0
                # sweeps below the window without this, 0 and 1 with it.)
                levels.extend(path_a(level_a, below_a, max_step_a))
                level_a = float(below_a)
            for target_a in window:
                levels.extend(path_a(level_a, target_a, max_step_a)[:-1])
                kept.append(len(levels))
                levels.append(float(target_a))
                level_a = float(target_a)
            levels.extend(path_a(window[-1], reset_a, max_step_a))
            spans.append((start, np.asarray(kept), len(levels) - 1))
            level_a = reset_a
        return np.asarray(levels), spans

    def _results(self, events, event_steps, event_windows, grid: Grid, retraps, pilot_step_a: float, branch,
                 counts) -> tuple[list[Result], int]:
        """The run's results, and the number of histogram bins chosen."""
        p = self.parameters
        level = CONFIDENCE_LEVEL
        stats = summarize(events)
        counts_h, edges = grid_histogram(events, grid, p.histogram_bins)
        windows = np.asarray(event_windows, dtype=float).reshape(-1, 2)
        censored = CensoredEvents.from_steps(events, event_steps, windows[:, 0], windows[:, 1])
        fit = fit_gaussian(censored, level, edges)
        spread = std_uncertainty(stats, level)
        # Each switch leaves flux in the loop that the next sweep starts from: successive events
        # are correlated, and the mean is known as from n/τ independent ones.
        # A run whose events fall within a step (a coarse window, few events) has a spread of 0:
        # the step then bounds the mean (iv.quantized_mean_uncertainty).
        student = correlated_mean_uncertainty(events, level)
        mean_u = iv.quantized_mean_uncertainty(events, float(np.median(event_steps)) if len(event_steps) else math.nan,
                                               level, student, "A")
        tau = integrated_autocorrelation_time(events)
        effective = stats.count / tau if math.isfinite(tau) else math.nan
        stderr = std_uncertainty(stats, level, scale=1 / math.sqrt(effective) if effective > 0 else math.nan)
        stderr = replace(stderr, method=f"{stderr.method}, divided by the square root of n/τ (τ = {tau:.2g}, "
                                        "the integrated autocorrelation time of the events in sweep order)")
        # The pilot reads the retrap to one step: the last resistive level is one step above.
        retrap_a, retrap_u = iv.bracketed_mean_uncertainty(np.asarray(retraps) + pilot_step_a / 2, pilot_step_a,
                                                            level, "A")
        resistance, resistance_u = iv.resistive_branch_fit(branch[0], branch[1], p.switched_v, level)
        results = [
            Result("switching_current_mean_a", stats.mean, "A", uncertainty=mean_u),
            Result("switching_current_std_a", stats.std, "A", uncertainty=spread),
            Result("switching_current_stderr_a", student.standard, "A", uncertainty=stderr),
            Result("switching_events", stats.count, "1"), Result("fast_sweeps", counts["sweeps"], "1"),
            Result("latched_sweeps", counts["latched"], "1"),
            Result("below_window_sweeps", counts["below_window"], "1"),
            Result("above_window_sweeps", counts["above_window"], "1"),
            Result("retrapping_current_a", retrap_a, "A", uncertainty=retrap_u),
            Result("resistive_branch_ohm", resistance, "ohm", uncertainty=resistance_u),
            # The grid the events after the search lie on (a setting of the windows: exact).
            Result("switching_current_grid_a", grid.spacing_a, "A",
                   exact="setting: the windows' step over their dither phases"),
            Result("switching_current_histogram", counts_h, "1",
                   Axis("switching_current_bin_a", 0.5 * (edges[1:] + edges[:-1]), "A")),
        ]
        if fit is not None:
            results += [
                Result("switching_fit_mean_a", fit.mean_a, "A", uncertainty=Uncertainty(
                    fit.method("mean"), level, *fit.mean_interval_a, fit.mean_standard_a)),
                Result("switching_fit_width_a", fit.width_a, "A", uncertainty=Uncertainty(
                    fit.method("standard deviation"), level, *fit.width_interval_a, fit.width_standard_a)),
                # A test's outcome and its degrees of freedom: computed exactly from the counts.
                Result("switching_fit_chi_square", fit.chi_square, "1", exact="goodness-of-fit statistic"),
                Result("switching_fit_dof", fit.dof, "1"),
                Result("switching_fit_p_value", fit.p_value, "1", exact="goodness-of-fit statistic"),
                Result("switching_fit_test", fit.test_method, ""),
            ]
        return results, len(counts_h)
