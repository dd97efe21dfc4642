"""Figures of the energy procedures: spiking traces with the detected spikes, the
energy-per-spike histogram and the efficiency comparison with its sources."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from lab.app.report.plots import Figure, empty_note, finite, histogram_with_mean, label, prefix_for, pyplot, save
from lab.app.report.runs import RunData, trace_channel

KIND_REFERENCE, KIND_SPIKE = 0, 1   # procedures.energy_per_spike: per-trace "kind"
SHOWN_TRACES = 4


def _channel(traces, name: str) -> np.ndarray | None:
    found = trace_channel(traces, name)
    return found[0] if found is not None else None


def spike_traces(run: RunData, directory: Path) -> list[Figure]:
    plt = pyplot()
    fig, (v_ax, i_ax) = plt.subplots(2, 1, figsize=(7.5, 6.0), sharex=True)
    traces = run.traces
    output = _channel(traces, "m") if traces is not None else None
    if output is None or output.shape[0] == 0:
        empty_note(v_ax, "no traces archived")
    else:
        time_ns = traces["time"].values * 1e9
        kind = traces["kind"].values.copy()
        if "attempt" in traces:     # captures a bias cycle made void (a latched wire) are not shown
            attempt = traces["attempt"].values
            kind[attempt != attempt.max()] = -1
        spikes = traces["spikes"].values
        amplitude = traces["amplitude_a"].values
        monitor = _channel(traces, "input_a")
        v_factor, v_unit = prefix_for(output, "V")
        reference = kind == KIND_REFERENCE
        shown = np.flatnonzero((kind == KIND_SPIKE) & (spikes > 0))[:SHOWN_TRACES]
        if not shown.size:
            shown = np.flatnonzero(kind == KIND_SPIKE)[:SHOWN_TRACES]
        linear = None
        if reference.any() and amplitude[reference][0] > 0:
            linear = output[reference].mean(axis=0) / amplitude[reference][0]   # volts per input ampere
        for n, index in enumerate(shown):
            v_ax.plot(time_ns, output[index] * v_factor, lw=1, color=f"C{n}", label=f"capture {index}")
            if monitor is not None:
                i_factor, i_unit = prefix_for(monitor[shown], "A")
                i_ax.plot(time_ns, monitor[index] * i_factor, lw=1, color=f"C{n}")
                i_ax.set_ylabel(label("input current", i_unit))
            if linear is not None and spikes[index] > 0:
                # The procedure counted a spike here; mark it where the excess over the linear
                # (sub-threshold, scaled) response peaks.
                peak = int(np.argmax(output[index] - linear * amplitude[index]))
                v_ax.plot(time_ns[peak], output[index, peak] * v_factor, "v", color="k", ms=8,
                          label="detected spike" if n == 0 else None)
        if linear is not None and shown.size:
            v_ax.plot(time_ns, linear * amplitude[shown[0]] * v_factor, "k--", lw=1,
                      label="linear response (scaled reference)")
        v_ax.set_ylabel(label("node m voltage at the chip", v_unit))
        v_ax.legend(fontsize=7, loc="upper right")
    v_ax.set_title("Spikes at the output node")
    i_ax.set(xlabel="time from trigger (ns)", title="Input pulse (monitor)")
    return [Figure(save(fig, directory / "spike_traces.png"), "Traces with detected spikes",
                   "Captures at the spiking amplitude (energy_per_spike), scaled back to the chip; "
                   "markers at the peak of each detected spike's excess over the linear response.")]


def energy_histogram(run: RunData, directory: Path) -> list[Figure]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    energies = finite(run.tables.get("spike_energies", {}).get("spike_energy_j", []))[0]
    if energies.size:
        histogram_with_mean(ax, energies, "J", quantity="energy per spike", counted="spiking captures",
                            mean=run.scalar("energy_per_spike_j"), std=run.scalar("energy_per_spike_std_j"),
                            bins=min(30, max(5, energies.size // 3)), color="C4", mean_label="energy per spike",
                            digits=3)
    else:
        empty_note(ax, "no spiking capture: no energy per spike")
    ax.set_title("Energy per spike (baseline subtracted)")
    return [Figure(save(fig, directory / "energy_per_spike.png"), "Energy per spike",
                   "∫V·I dt per spiking capture minus the sub-threshold baseline scaled to the amplitude.")]


def _references(run: RunData) -> list[tuple[str, str, float, str]]:
    """(key, platform, SOPS/W, source) for every reference figure the run archived."""
    found = []
    for name, quantity in run.results.items():
        if name.endswith("_source") and name[:-7] + "_sops_per_w" in run.results:
            key = name[:-7]
            platform, _, source = str(quantity.value).partition(": ")
            found.append((key, platform, run.scalar(f"{key}_sops_per_w"), source))
    return found


def efficiency(run: RunData, directory: Path) -> list[Figure]:
    plt = pyplot()
    references = _references(run)
    bars = [("This chip, on chip", run.scalar("sops_per_w_on_chip"), "C3", ""),
            ("This chip, at the wall plug", run.scalar("sops_per_w_wall_plug"), "C1", "")]
    notes = []
    references.sort(key=lambda ref: -ref[2] if math.isfinite(ref[2]) else 0.0)
    for n, (_, platform, value, source) in enumerate(references, start=1):
        bars.append((f"{platform} [{n}]", value, "C0", source))
        notes.append(f"[{n}] {source}")
    overhead = run.scalar("cooling_overhead_w_per_w")
    footnote = "\n".join(textwrap.fill(note, 150) for note in notes)
    height_in = 4.6 + 0.12 * (footnote.count("\n") + 1)
    fig, ax = plt.subplots(figsize=(8.5, height_in))
    names = [b[0] for b in bars]
    values = np.array([b[1] for b in bars], float)
    shown = np.where(np.isfinite(values) & (values > 0), values, np.nan)
    ax.barh(range(len(bars)), shown, color=[b[2] for b in bars])
    for y, value in enumerate(shown):
        if math.isfinite(value):
            ax.text(value * 1.3, y, f"{value:.2g}", va="center", fontsize=8)
    ax.set_yticks(range(len(bars)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    if np.isfinite(shown).any():
        ax.set_xlim(np.nanmin(shown) / 10, np.nanmax(shown) * 30)
    ax.set(xlabel="synaptic operations per second per watt (SOPS/W = 1/J per synaptic event)",
           title=f"Energy efficiency (wall plug: cooling overhead {overhead:g} W/W)")
    fig.text(0.01, 0.01, footnote, fontsize=6, va="bottom", ha="left")
    # Leave room at the bottom for the footnote: its lines are 6 pt at ~1.25 line spacing.
    lines = footnote.count("\n") + 1 if notes else 0
    fig.tight_layout(rect=(0, 0.015 + lines * 6 * 1.25 / 72 / height_in, 1, 1))
    path = directory / "efficiency.png"
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return [Figure(path, "Energy efficiency",
                   "SOPS/W of this chip (energy per synaptic event = synaptic_energy_ratio × the measured "
                   "energy per spike) on chip and at the wall plug, beside published figures:\n"
                   + "\n".join(f"{n}. {platform}: {source}" for n, (_, platform, _, source)
                               in enumerate(references, start=1)))]
