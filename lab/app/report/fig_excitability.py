"""Figures of the pulsed procedures: strength–duration with its fits, the refractory curve and
the f–I curve."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lab.app.report.plots import Figure, empty_note, finite, label, plain_log_x, prefix_for, pyplot, save
from lab.app.report.runs import RunData
from procedures.analysis.strength_duration import lapicque_threshold_a, weiss_threshold_a


def strength_duration(run: RunData, directory: Path) -> list[Figure]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    threshold = run.result("threshold_a")
    widths, thresholds = (finite(threshold.axis_values, threshold.value) if threshold is not None
                          and threshold.axis_values is not None else (np.array([]), np.array([])))
    if widths.size:
        i_factor, i_unit = prefix_for(thresholds, "A")
        resolution = run.scalar("threshold_resolution_a")
        error = resolution / 2 * i_factor if math.isfinite(resolution) else None
        ax.errorbar(widths * 1e9, thresholds * i_factor, yerr=error, fmt="o", capsize=3, label="measured threshold")
        grid = np.geomspace(widths.min() * 0.7, widths.max() * 1.5, 200)
        rheobase, chronaxie = run.scalar("rheobase_a"), run.scalar("chronaxie_s")
        if math.isfinite(rheobase) and math.isfinite(chronaxie):
            ax.plot(grid * 1e9, weiss_threshold_a(grid, rheobase, chronaxie) * i_factor, "-",
                    label=f"Weiss: rheobase {rheobase * i_factor:.3g} {i_unit}, chronaxie {chronaxie * 1e9:.3g} ns")
            ax.axhline(rheobase * i_factor, color="0.5", ls=":", label="rheobase")
            ax.axvline(chronaxie * 1e9, color="0.5", ls="-.", label="chronaxie (I = 2 × rheobase)")
        tau, lapicque = run.scalar("lapicque_time_constant_s"), run.scalar("lapicque_rheobase_a")
        if math.isfinite(tau) and math.isfinite(lapicque):
            ax.plot(grid * 1e9, lapicque_threshold_a(grid, lapicque, tau) * i_factor, "--",
                    label=f"Lapicque: τ = {tau * 1e9:.3g} ns")
        plain_log_x(ax)
        ax.set(xlabel="input pulse width (ns)", ylabel=label("threshold current", i_unit))
        ax.legend(fontsize=8)
    else:
        empty_note(ax, "no finite threshold: every bisection stayed at one end of its bracket")
    ax.set_title("Strength–duration curve")
    return [Figure(save(fig, directory / "strength_duration.png"), "Strength–duration",
                   "Firing threshold (P = 0.5) against input pulse width, error bars ± half the bisection "
                   "resolution; Weiss I = I_rh(1 + t_ch/w) and Lapicque I = I_rh/(1 − e^(−w/τ)) fits.")]


def refractory(run: RunData, directory: Path) -> list[Figure]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    probability = run.result("second_spike_probability")
    if probability is not None and probability.axis_values is not None:
        spacing_ns = np.asarray(probability.axis_values, float) * 1e9
        order = np.argsort(spacing_ns)
        low, high = run.result("second_spike_probability_low"), run.result("second_spike_probability_high")
        if low is not None and high is not None:
            ax.fill_between(spacing_ns[order], np.asarray(low.value)[order], np.asarray(high.value)[order],
                            color="C0", alpha=0.2, label="95 % Wilson interval")
        ax.plot(spacing_ns[order], np.asarray(probability.value)[order], "o-", label="P(second spike)")
        ax.axhline(0.5, color="0.5", ls=":", label="P = 0.5")
        period = run.scalar("refractory_period_s")
        if math.isfinite(period):
            ax.axvline(period * 1e9, color="C3", ls="--", label=f"refractory period {period * 1e9:.3g} ns")
        below = run.scalar("refractory_period_below_s")
        if math.isfinite(below):
            ax.axvline(below * 1e9, color="C3", ls=":", label=f"refractory period < {below * 1e9:.3g} ns")
        plain_log_x(ax)
        ax.set(ylim=(-0.05, 1.05))
        ax.legend(fontsize=8)
    else:
        empty_note(ax, "no second-spike probabilities archived")
    ax.set(xlabel="pulse spacing, start to start (ns)", ylabel="second-spike probability",
           title="Refractory period (paired pulses)")
    return [Figure(save(fig, directory / "refractory.png"), "Refractory period",
                   "Probability that the second pulse of a pair fires a spike, against the pair's spacing.")]


def firing_rate(run: RunData, directory: Path) -> list[Figure]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    rate, spread = run.result("firing_rate_hz"), run.result("firing_rate_std_hz")
    current = values = errors = None
    if rate is not None and rate.axis_values is not None:
        current, values = np.asarray(rate.axis_values, float), np.asarray(rate.value, float)
        errors = None if spread is None else np.asarray(spread.value, float)
    elif run.tables.get("records", {}).get("rate_hz") is not None:
        # A run that ended early has its per-record rates but no summary: average them here.
        table = run.tables["records"]
        current = np.unique(table["input_current_a"])
        per = [table["rate_hz"][table["input_current_a"] == c] for c in current]
        values, errors = np.array([p.mean() for p in per]), np.array([p.std() for p in per])
    if current is not None and current.size:
        i_factor, i_unit = prefix_for(current, "A")
        f_factor, f_unit = prefix_for(values if np.any(values > 0) else [1e6], "Hz")
        ax.errorbar(current * i_factor, values * f_factor,
                    yerr=None if errors is None else errors * f_factor,
                    fmt="o-", capsize=3, label="firing rate (mean ± σ over records)")
        onset = run.scalar("onset_current_a")
        if math.isfinite(onset):
            ax.axvline(onset * i_factor, color="C3", ls="--", label=f"onset {onset * i_factor:.3g} {i_unit}")
        ax.set(xlabel=label("DC input current", i_unit), ylabel=label("firing rate", f_unit))
        ax.legend(fontsize=8)
    else:
        empty_note(ax, "no firing rates archived")
    ax.set_title("f–I curve")
    return [Figure(save(fig, directory / "firing_rate.png"), "f–I curve",
                   "Firing rate against a constant input current; spikes after the triggering one, "
                   "over the record after the trigger.")]
