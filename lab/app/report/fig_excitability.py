"""Figures of the pulsed procedures: strength–duration with its fits, the refractory curve, the
f–I curve and the synaptic transfer curve."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from lab.app.report.plots import (Figure, empty_note, finite, format_si, label, plain_log_x, prefix_for, pyplot,
                                  save)
from lab.app.report.runs import RunData
from procedures.analysis.rate import every_record_fired, gain_fit, rate_uncertainty
from procedures.analysis.recovery import probability as recovery_probability
from procedures.analysis.strength_duration import lapicque_threshold_a, weiss_threshold_a


def strength_duration(run: RunData, directory: Path) -> list[Figure]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    threshold = run.result("threshold_a")
    widths, thresholds = (finite(threshold.axis_values, threshold.value) if threshold is not None
                          and threshold.axis_values is not None else (np.array([]), np.array([])))
    caption_error = "no interval archived"
    if widths.size:
        i_factor, i_unit = prefix_for(thresholds, "A")
        interval = _interval(threshold)
        if interval is not None:          # the archived interval of each threshold, on the finite ones
            keep = np.isfinite(np.asarray(threshold.value, float)) & np.isfinite(np.asarray(threshold.axis_values,
                                                                                               float))
            low, high, level = interval
            low, high = np.where(np.isfinite(low[keep]), low[keep], thresholds), np.where(
                np.isfinite(high[keep]), high[keep], thresholds)
            error = np.vstack([thresholds - low, high - thresholds]) * i_factor
            caption_error = f"error bars the {level * 100:g} % interval ({threshold.uncertainty.method})"
            ax.errorbar(widths * 1e9, thresholds * i_factor, yerr=error, fmt="o", capsize=3,
                        label=f"measured threshold, {level * 100:g} % interval")
        else:
            ax.plot(widths * 1e9, thresholds * i_factor, "o", label="measured threshold (no interval archived)")
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
        empty_note(ax, "no finite threshold: no width's psychometric fit crossed P = 0.5 inside its bracket")
    ax.set_title("Strength–duration curve")
    return [Figure(save(fig, directory / "strength_duration.png"), "Strength–duration",
                   f"Firing threshold (P = 0.5 of a probit psychometric fit) against input pulse width, "
                   f"{caption_error}; Weiss I = I_rh(1 + t_ch/w) and Lapicque I = I_rh/(1 − e^(−w/τ)) fits "
                   "weighted by the thresholds' uncertainties.")]


def _interval(quantity, fallback_low=None, fallback_high=None):
    """(low, high, level) of a result's uncertainty; an older run's separate low/high results."""
    u = None if quantity is None else quantity.uncertainty
    if u is not None:
        return np.asarray(u.low, float), np.asarray(u.high, float), float(u.level)
    if fallback_low is not None and fallback_high is not None:
        return np.asarray(fallback_low.value, float), np.asarray(fallback_high.value, float), 0.95
    return None


def _span_label(name: str, value: float, quantity, units: str) -> str:
    """"name 4.33 ns (95 % interval 3.8 to 4.62 ns)" from a scalar result and its uncertainty."""
    u = quantity.uncertainty if quantity is not None else None
    text = f"{name} {format_si(value, units, 3)}"
    if u is not None and np.isfinite(u.low) and np.isfinite(u.high):
        text += f" ({u.level:.0%} interval {format_si(float(u.low), units, 3)} to {format_si(float(u.high), units, 3)})"
    return text


def refractory(run: RunData, directory: Path) -> list[Figure]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    probability = run.result("second_spike_probability")
    if probability is not None and probability.axis_values is not None:
        spacing_ns = np.asarray(probability.axis_values, float) * 1e9
        values = np.asarray(probability.value, float)
        interval = _interval(probability, run.result("second_spike_probability_low"),
                             run.result("second_spike_probability_high"))
        pairs = run.tables.get("pairs", {})
        counted = ""
        if pairs.get("trials") is not None:
            counted = f", {int(np.sum(pairs['trials']))} pairs"
        if interval is not None:
            low, high, level = interval
            ax.errorbar(spacing_ns, values, yerr=[np.clip(values - low, 0, None), np.clip(high - values, 0, None)],
                        fmt="o", capsize=3, label=f"P(second spike), {level:.0%} Wilson interval{counted}")
        else:
            ax.plot(spacing_ns, values, "o", label=f"P(second spike){counted}")
        ax.axhline(0.5, color="0.5", ls=":", label="P = 0.5")
        period_q, width_q = run.result("refractory_period_s"), run.result("recovery_width_s")
        period, width = run.scalar("refractory_period_s"), run.scalar("recovery_width_s")
        grid = np.geomspace(spacing_ns.min() * 0.9, spacing_ns.max() * 1.1, 400) * 1e-9
        if math.isfinite(period) and math.isfinite(width) and width > 0:
            ax.plot(grid * 1e9, recovery_probability(grid, period, width), "-", color="C1",
                    label=_span_label("fit Φ((Δ − period)/width), width", width, width_q, "s"))
            u = period_q.uncertainty
            if u is not None and np.isfinite(u.low) and np.isfinite(u.high):
                ax.fill_between(grid * 1e9, recovery_probability(grid, float(u.low), width),
                                recovery_probability(grid, float(u.high), width), color="C1", alpha=0.15,
                                label=f"fit shifted across the period's {u.level:.0%} interval")
                ax.axvspan(float(u.low) * 1e9, float(u.high) * 1e9, color="C3", alpha=0.12)
            ax.axvline(period * 1e9, color="C3", ls="--", label=_span_label("refractory period", period, period_q, "s"))
        upper, lower = run.scalar("refractory_period_upper_bound_s"), run.scalar("refractory_period_lower_bound_s")
        if math.isfinite(upper):
            ax.axvline(upper * 1e9, color="C3", ls=":", label=f"refractory period < {format_si(upper, 's', 3)} "
                                                               "(95 % profile-likelihood upper limit)")
        if math.isfinite(lower):
            ax.axvline(lower * 1e9, color="C3", ls=":", label=f"refractory period > {format_si(lower, 's', 3)} "
                                                               "(95 % profile-likelihood lower limit)")
        plain_log_x(ax)
        ax.set(ylim=(-0.05, 1.05))
        ax.legend(fontsize=7)
    else:
        empty_note(ax, "no second-spike probabilities archived")
    ax.set(xlabel="pulse spacing, start to start (ns)", ylabel="second-spike probability",
           title="Refractory period (paired pulses)")
    return [Figure(save(fig, directory / "refractory.png"), "Refractory period",
                   "Probability that the second pulse of a pair fires a spike, against the pair's spacing, with "
                   "Wilson intervals; the recovery curve P = Φ((Δ − period)/width) fitted by binomial maximum "
                   "likelihood to every pair, and the period (P = 0.5) with its profile-likelihood interval.")]


def _records_by_current(run: RunData):
    """(currents, per-current spikes, per-current durations) from the `records` table, or None."""
    table = run.tables.get("records", {})
    if table.get("input_current_a") is None or table.get("spikes") is None or table.get("duration_s") is None:
        return None
    current = np.asarray(table["input_current_a"], float)
    if table.get("counted") is not None:        # records taken while firing settled are not counted
        counted = np.asarray(table["counted"]).astype(bool)
        table = {name: np.asarray(column)[counted] for name, column in table.items()}
        current = current[counted]
    values = np.unique(current)
    return (values, [np.asarray(table["spikes"])[current == c] for c in values],
            [np.asarray(table["duration_s"], float)[current == c] for c in values])


def firing_rate(run: RunData, directory: Path) -> list[Figure]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    rate = run.result("firing_rate_hz")
    records = _records_by_current(run)
    current = values = None
    low = high = None
    label_points = "firing rate"
    if rate is not None and rate.axis_values is not None:
        current, values = np.asarray(rate.axis_values, float), np.asarray(rate.value, float)
        interval = _interval(rate)
        if interval is not None:
            low, high, level = interval
            label_points = f"firing rate, mean over records, {level:.0%} interval"
        elif run.result("firing_rate_std_hz") is not None:        # an older run: σ over its records
            spread = np.asarray(run.result("firing_rate_std_hz").value, float)
            low, high = values - spread, values + spread
            label_points = "firing rate (mean ± σ over records)"
    elif records is not None:
        # A run that ended early has its records but no summary: their rates with the same intervals.
        current = records[0]
        values, u = rate_uncertainty(records[1], records[2])
        low, high = np.asarray(u.low), np.asarray(u.high)
        label_points = f"firing rate, mean over records, {u.level:.0%} interval"
    if current is not None and current.size:
        i_factor, i_unit = prefix_for(current, "A")
        f_factor, f_unit = prefix_for(values if np.any(values > 0) else [1e6], "Hz")
        yerr = None if low is None else [np.clip(values - low, 0, None) * f_factor,
                                         np.clip(high - values, 0, None) * f_factor]
        ax.errorbar(current * i_factor, values * f_factor, yerr=yerr, fmt="o", capsize=3, label=label_points)
        gain_q = run.result("firing_gain_hz_per_a")
        if records is not None and gain_q is not None and math.isfinite(gain_q.scalar()):
            every = every_record_fired(records[0], records[1])
            gain = gain_fit(records[0][every], [k for k, e in zip(records[1], every) if e],
                            [d for d, e in zip(records[2], every) if e])
            if math.isfinite(gain.slope_hz_per_a) and gain.slope_hz_per_a > 0:
                fitted = np.linspace(gain.currents_a.min(), gain.currents_a.max(), 50)
                ax.plot(fitted * i_factor, gain.rate_hz(fitted) * f_factor, "-", color="C1",
                        label=_span_label("least-squares line, gain", gain_q.scalar(), gain_q, "Hz/A"))
                zero_a = gain.current_mean_a - gain.rate_mean_hz / gain.slope_hz_per_a
                below = np.linspace(max(zero_a, current.min()), gain.currents_a.min(), 20)
                ax.plot(below * i_factor, gain.rate_hz(below) * f_factor, ":", color="C1",
                        label="the line extended to zero rate")
        onset_q = run.result("onset_current_a")
        onset = run.scalar("onset_current_a")
        if math.isfinite(onset):
            u = onset_q.uncertainty
            if u is not None and np.isfinite(u.low) and np.isfinite(u.high):
                ax.axvspan(float(u.low) * i_factor, float(u.high) * i_factor, color="C3", alpha=0.12)
            ax.axvline(onset * i_factor, color="C3", ls="--",
                       label=_span_label("onset (half the records fire)", onset, onset_q, "A"))
        for name, sign in (("onset_current_upper_bound_a", "<"), ("onset_current_lower_bound_a", ">")):
            bound = run.scalar(name)
            if math.isfinite(bound):
                ax.axvline(bound * i_factor, color="C3", ls=":", label=f"onset {sign} {format_si(bound, 'A', 3)}")
        ax.set(xlabel=label("DC input current", i_unit), ylabel=label("firing rate", f_unit))
        ax.legend(fontsize=7)
    else:
        empty_note(ax, "no firing rates archived")
    ax.set_title("f–I curve")
    return [Figure(save(fig, directory / "firing_rate.png"), "f–I curve",
                   "Firing rate against a constant input current (spikes after the triggering one, over the time "
                   "they were counted in), mean over records with its interval; the onset where half the records fire "
                   "repeatedly (probit fit, profile-likelihood interval) and the least-squares line over the "
                   "currents where every record fired.")]


def synaptic_transfer(run: RunData, directory: Path) -> list[Figure]:
    """Transfer probability against the weight current with its Wilson intervals, each point's
    transmitted/trials; below it, the delay pre spike to post spike over the transmitting trials."""
    plt = pyplot()
    fig, (p_ax, d_ax) = plt.subplots(2, 1, figsize=(6.8, 6.4), sharex=True, gridspec_kw={"height_ratios": (3, 2)})
    probability, delay = run.result("transfer_probability"), run.result("transfer_delay_s")
    weights = (np.asarray(probability.axis_values, float) if probability is not None
               and probability.axis_values is not None else np.array([]))
    values = np.asarray(probability.value, float) if weights.size else np.array([])
    if np.isfinite(values).any():
        w_factor, w_unit = prefix_for(weights, "A")
        x = weights * w_factor
        interval = _interval(probability)
        counted = ""
        trials, sent = run.result("trials"), run.result("transmitted")
        if trials is not None and sent is not None:
            counted = f", {int(np.sum(trials.value))} trials"
            spontaneous = run.result("spontaneous_post_spikes")
            extra = np.asarray(spontaneous.value) if spontaneous is not None else np.zeros(weights.size, int)
            for xk, pk, k, n, s in zip(x, values, np.asarray(sent.value), np.asarray(trials.value), extra):
                text = f"{k}/{n}" + (f", {s} spont." if s else "")
                p_ax.annotate(text, (xk, pk if math.isfinite(pk) else 0.0), textcoords="offset points",
                              xytext=(4, 6), fontsize=7, color="0.3")
        if interval is not None:
            low, high, level = interval
            p_ax.errorbar(x, values, yerr=[np.clip(np.nan_to_num(values - low), 0, None),
                                           np.clip(np.nan_to_num(high - values), 0, None)],
                          fmt="o-", capsize=3, label=f"P(transfer), {level:.0%} Wilson interval{counted}")
        else:
            p_ax.plot(x, values, "o-", label=f"P(transfer){counted}")
        onset_q = run.result("weight_onset_a")
        onset = run.scalar("weight_onset_a")
        for ax in (p_ax, d_ax):
            if math.isfinite(onset):
                ax.axvline(onset * w_factor, color="C3", ls="--",
                           label=_span_label("weight onset", onset, onset_q, "A") if ax is p_ax else None)
        p_ax.set(ylim=(-0.05, 1.1), ylabel="transfer probability")
        p_ax.legend(fontsize=7, loc="best")
        d_values = np.asarray(delay.value, float) if delay is not None else np.full(weights.size, np.nan)
        sent_any = np.isfinite(d_values)
        if sent_any.any():
            d_interval = _interval(delay)
            if d_interval is not None:
                d_low, d_high, d_level = d_interval
                bounded = sent_any & np.isfinite(d_low) & np.isfinite(d_high)
                if bounded.any():
                    d_ax.errorbar(x[bounded], d_values[bounded] * 1e9, fmt="s", color="C2", capsize=3,
                                  yerr=[(d_values - d_low)[bounded] * 1e9, (d_high - d_values)[bounded] * 1e9],
                                  label=f"mean delay, {d_level:.0%} interval ({_method_name(delay)})")
                if (sent_any & ~bounded).any():
                    d_ax.plot(x[sent_any & ~bounded], d_values[sent_any & ~bounded] * 1e9, "s", color="C2", mfc="none",
                              label="delay of one transmission (no interval)")
            else:
                d_ax.plot(x[sent_any], d_values[sent_any] * 1e9, "s", color="C2", label="mean delay")
            d_ax.legend(fontsize=7)
        else:
            empty_note(d_ax, "no pre spike was transmitted: no delay")
        d_ax.set(xlabel=label("weight (control) current", w_unit), ylabel="delay pre → post spike (ns)")
    else:
        empty_note(p_ax, "no transfer probability archived (no weight with a pre spike)")
        d_ax.set(xlabel="weight (control) current")
    p_ax.set_title("Synaptic transfer against the weight current")
    return [Figure(save(fig, directory / "synaptic_transfer.png"), "Synaptic transfer",
                   "Probability that a pre-neuron spike fires the post-neuron within the window, against the "
                   "synapse's weight (control) current, with Wilson intervals over the captures with a pre spike "
                   "(transmitted/trials beside each point, spontaneous post spikes if any); the weight onset as "
                   "archived (dashed). Below: the delay from the pre spike to the post spike, mean over the "
                   "transmitting captures with its interval.")]


def _method_name(quantity) -> str:
    """An interval's method without its detail ("Student t interval on the mean"): one result's
    method names the sample size of one of its points only."""
    return re.sub(r"\s*\(n = \d+\)", "", quantity.uncertainty.method.split(":")[0])
