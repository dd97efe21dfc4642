"""Figures of the DC procedures: the cooldown's temperature log, the I–V curve and the
switching-current histogram."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from contracts.units import format_si
from lab.app.report.plots import Figure, empty_note, finite, label, prefix_for, pyplot, save
from lab.app.report.runs import Quantity, RunData
from procedures.analysis.switching import CensoredEvents, estimate_grid, expected_counts, grid_histogram


def cooldown(run: RunData, directory: Path) -> list[Figure]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    table = run.tables.get("temperature_log", {})
    time_s, temperature_k = finite(table.get("time_s", []), table.get("temperature_k", []))
    setpoint = run.parameters.get("setpoint_k")
    if time_s.size:
        ax.plot(time_s / 60.0, temperature_k, "o-", ms=3, label="stage temperature")
    else:
        empty_note(ax, "no temperature readings archived")
    if setpoint is not None:
        ax.axhline(setpoint.scalar(), color="C3", ls="--", label=f"setpoint {setpoint.scalar():g} K")
    ax.set(xlabel="lab time (min)", ylabel="temperature (K)", title="Cooldown: stage temperature")
    if ax.get_legend_handles_labels()[0]:    # a run with neither readings nor setpoint has none
        ax.legend()
    return [Figure(save(fig, directory / "cooldown_temperature.png"), "Cooldown",
                   "Stage temperature while approaching the setpoint (before the stability hold).")]


def iv_sweep(run: RunData, directory: Path) -> list[Figure]:
    plt = pyplot()
    fig, (iv_ax, hist_ax) = plt.subplots(1, 2, figsize=(11.0, 4.2))
    curve = run.tables.get("iv_curve", {})
    bias_a = np.asarray(curve.get("bias_a", []), float)
    voltage_v = np.asarray(curve.get("voltage_v", []), float)
    if bias_a.size:
        i_factor, i_unit = prefix_for(bias_a, "A")
        v_factor, v_unit = prefix_for(voltage_v, "V")
        direction = np.asarray(curve.get("direction", np.ones(bias_a.size)))
        sweep = np.asarray(curve.get("sweep", np.zeros(bias_a.size)))
        for sign, name, style in ((1, "up", "-o"), (-1, "down", "--s")):
            for k, number in enumerate(np.unique(sweep)):
                pick = (direction == sign) & (sweep == number)
                iv_ax.plot(bias_a[pick] * i_factor, voltage_v[pick] * v_factor, style, ms=3,
                           color="C0" if sign > 0 else "C1", alpha=0.8,
                           label=f"sweep {name}" if k == 0 else None)
        iv_ax.set(xlabel=label("bias current", i_unit), ylabel=label("port voltage", v_unit))
        iv_ax.legend()
    else:
        empty_note(iv_ax, "no I–V points archived")
    iv_ax.set_title("I–V of the bias port")

    switching_histogram(hist_ax, run)
    hist_ax.set_title("Switching-current histogram")
    return [Figure(save(fig, directory / "iv_switching.png"), "I–V and switching current",
                   "Left: pilot sweeps up and down (retrapping on the way down). Right: switching "
                   "currents of the fast sweeps, one event per sweep, in bins a whole number of steps of the "
                   "events' grid wide (edges half-way between grid values); the Gaussian fitted by maximum "
                   "likelihood to the events as read (each inside its step and window): the counts it expects "
                   "per bin (steps), which the chi-square test compares, and its density (dashed).")]


def _interval(quantity: Quantity | None, factor: float, unit: str, digits: int) -> str:
    """"36.5964 µA [36.5912, 36.6015]" — a value and its interval in one prefix."""
    if quantity is None:
        return "n/a"
    text = f"{quantity.scalar() * factor:.{digits}g}"
    u = quantity.uncertainty
    if u is not None and np.isfinite(u.low) and np.isfinite(u.high):
        text += f" [{float(u.low) * factor:.{digits}g}, {float(u.high) * factor:.{digits}g}]"
    return f"{text} {unit}"


def switching_histogram(ax, run: RunData) -> None:
    """The archived grid-aligned histogram, the fitted Gaussian's expected counts per bin and its
    density, parameters with their intervals in the legend. Archives from before the grid-aligned
    bins: the events binned on the grid estimated from their spacing (plain bins if none)."""
    table = run.tables.get("switching_events", {})
    events = finite(table.get("switching_current_a", []))[0]
    histogram = run.result("switching_current_histogram")
    fit_mean, fit_width = run.result("switching_fit_mean_a"), run.result("switching_fit_width_a")
    if not events.size:
        empty_note(ax, "no switching events archived")
        return
    grid_a = run.scalar("switching_current_grid_a")
    if np.isfinite(grid_a) and histogram is not None and histogram.axis_values is not None \
            and len(histogram.axis_values) >= 2:
        counts = np.asarray(histogram.value, dtype=float)
        centres = np.asarray(histogram.axis_values, dtype=float)
        width_a = float(np.mean(np.diff(centres)))
        edges = np.concatenate([centres - width_a / 2, [centres[-1] + width_a / 2]])
    else:
        # The windows after the search share the last event's step; their events carry the grid.
        step_a = np.asarray(table.get("step_a", []), float)
        windowed = events[step_a == step_a[-1]] if step_a.size == events.size else events
        grid = estimate_grid(windowed)
        grid_a = grid.spacing_a if grid is not None else float("nan")
        counts, edges = grid_histogram(events, grid)
        centres, width_a = 0.5 * (edges[1:] + edges[:-1]), float(np.mean(np.diff(edges)))
    factor, unit = prefix_for(centres, "A")
    multiple = round(width_a / grid_a) if np.isfinite(grid_a) and grid_a > 0 else 0
    steps = f" = {multiple} grid step{'s' if multiple > 1 else ''} of {format_si(grid_a, 'A', 5)}" if multiple else ""
    ax.bar(centres * factor, counts, width=width_a * factor, color="C2", alpha=0.7,
           label=f"{int(counts.sum())} switching events, bins {format_si(width_a, 'A', 5)}{steps}")
    if fit_mean is not None and fit_width is not None:
        mean_a, sigma_a = fit_mean.scalar(), fit_width.scalar()
        step_a = np.asarray(table.get("step_a", np.full(events.size, np.nan)), float)
        low_a = table.get("window_low_a")
        high_a = table.get("window_high_a")
        recorded = CensoredEvents.from_steps(table.get("switching_current_a"), step_a, low_a, high_a)
        if recorded.count:
            expected = expected_counts(recorded, mean_a, sigma_a, edges)
            ax.step(edges * factor, np.concatenate([expected, expected[-1:]]), where="post", color="k", lw=1.2,
                    label="fit: expected per bin")
        x_a = np.linspace(edges[0], edges[-1], 400)
        density = (counts.sum() * width_a * np.exp(-0.5 * ((x_a - mean_a) / sigma_a) ** 2)
                   / (sigma_a * np.sqrt(2 * np.pi)))
        ax.plot(x_a * factor, density, "--", color="C3", lw=1.2,
                label=f"fit: μ = {_interval(fit_mean, factor, unit, 7)}")
        level = fit_mean.uncertainty.level if fit_mean.uncertainty is not None else float("nan")
        p_value, dof = run.scalar("switching_fit_p_value"), run.scalar("switching_fit_dof")
        ax.plot([], [], " ", label=f"σ = {_interval(fit_width, 1e9, 'nA', 3)} ({level:.0%}, profile likelihood)")
        ax.plot([], [], " ", label=f"χ² test: p = {p_value:.3g}, {dof:.0f} dof")
    mean = run.result("switching_current_mean_a")
    if mean is not None:
        ax.axvline(mean.scalar() * factor, color="k", ls=":", lw=1,
                   label=f"mean of events {_interval(mean, factor, unit, 7)}")
    ax.set(xlabel=label("switching current", unit), ylabel="events per bin")
    ax.set_ylim(0, 1.9 * max(counts.max(), 1))        # room above the bars for the legend
    ax.legend(fontsize=7, loc="upper left")
