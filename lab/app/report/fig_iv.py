"""Figures of the DC procedures: the cooldown's temperature log, the I–V curve and the
switching-current histogram."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lab.app.report.plots import Figure, empty_note, finite, histogram_with_mean, label, prefix_for, pyplot, save
from lab.app.report.runs import RunData


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

    events = finite(run.tables.get("switching_events", {}).get("switching_current_a", []))[0]
    if events.size:
        histogram_with_mean(hist_ax, events, "A", quantity="switching current", counted="switching events",
                            mean=events.mean(), std=events.std(ddof=1) if events.size > 1 else 0.0,
                            bins=min(40, max(5, events.size // 10)), color="C2")
    else:
        empty_note(hist_ax, "no switching events archived")
    hist_ax.set_title("Switching-current histogram")
    return [Figure(save(fig, directory / "iv_switching.png"), "I–V and switching current",
                   "Left: pilot sweeps up and down (retrapping on the way down). Right: switching "
                   "currents of the fast sweeps, one event per sweep.")]
