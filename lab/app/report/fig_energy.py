"""Figures of the energy procedures: spiking traces with the detected spikes, the
energy-per-spike histogram, the energies per synaptic event by repeat and the efficiency
comparison with its sources."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from lab.app.report.plots import Figure, empty_note, finite, histogram_with_mean, label, prefix_for, pyplot, save
from lab.app.report.runs import RunData
from procedures.analysis.spikes import (
    CAPTURE_CLASSES, CONTROL_AFTERPULSE, MULTIPLE_SPIKES, NO_RESET, NO_SPIKE, SINGLE_SPIKE,
)
from procedures.efficiency import ASSUMING
from procedures.energy_per_spike import CAPTURES_TABLE, KIND_REFERENCE, KIND_SPIKE
from procedures.synaptic_energy import EVENTS_TABLE as SYNAPTIC_EVENTS_TABLE
from procedures.synaptic_energy import REPEATS_TABLE as SYNAPTIC_REPEATS_TABLE

SHOWN_TRACES = 4
#: Histogram colours of the classes of captures at the spiking amplitude.
CLASS_COLORS = {SINGLE_SPIKE: "C4", MULTIPLE_SPIKES: "C3", CONTROL_AFTERPULSE: "C1", NO_RESET: "C2", NO_SPIKE: "C7"}


def spike_traces(run: RunData, directory: Path) -> list[Figure]:
    plt = pyplot()
    fig, (v_ax, c_ax, i_ax) = plt.subplots(3, 1, figsize=(7.5, 8.0), sharex=True)
    traces = run.trace_arrays()
    output = traces.samples.get("m") if traces is not None else None
    bias_node = traces.samples.get("c") if traces is not None else None
    if output is None or output.shape[0] == 0:
        empty_note(v_ax, "no traces archived")
    else:
        time_ns = traces.time_s * 1e9
        kind = traces.columns["kind"].copy()
        if "attempt" in traces.columns:     # captures a bias cycle made void (a latched wire) are not shown
            attempt = traces.columns["attempt"]
            kind[attempt != attempt.max()] = -1
        spikes = traces.columns["spikes"]
        amplitude = traces.columns["amplitude_a"]
        monitor = traces.samples.get("input_a")
        v_factor, v_unit = prefix_for(output, "V")
        reference = kind == KIND_REFERENCE
        shown = np.flatnonzero((kind == KIND_SPIKE) & (spikes > 0))[:SHOWN_TRACES]
        if not shown.size:
            shown = np.flatnonzero(kind == KIND_SPIKE)[:SHOWN_TRACES]
        classes = _trace_classes(run, kind.size)
        if classes is not None:     # two single spikes and the first capture of every other class
            firing = kind == KIND_SPIKE
            picked = list(np.flatnonzero(firing & (classes == SINGLE_SPIKE))[:2])
            picked += [int(np.flatnonzero(firing & (classes == code))[0]) for code in CLASS_COLORS
                       if code != SINGLE_SPIKE and (firing & (classes == code)).any()]
            shown = np.array(sorted(picked), dtype=int) if picked else shown
        linear = None
        if reference.any() and amplitude[reference][0] > 0:
            linear = output[reference].mean(axis=0) / amplitude[reference][0]   # volts per input ampere
        for n, index in enumerate(shown):
            what = f" ({CAPTURE_CLASSES[int(classes[index])]})" if classes is not None else ""
            v_ax.plot(time_ns, output[index] * v_factor, lw=1, color=f"C{n}", label=f"capture {index}{what}")
            if bias_node is not None:
                c_ax.plot(time_ns, bias_node[index] * v_factor, lw=1, color=f"C{n}")
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
        c_ax.set_ylabel(label("node c (bias) voltage", v_unit))
        v_ax.legend(fontsize=7, loc="upper right")
    v_ax.set_title("Spikes at the output node")
    c_ax.set_title("Control-wire switchings at the bias node", fontsize=9)
    i_ax.set(xlabel="time from trigger (ns)", title="Input pulse (monitor)")
    return [Figure(save(fig, directory / "spike_traces.png"), "Traces with detected spikes",
                   "Captures at the spiking amplitude (energy_per_spike), scaled back to the chip, one of each "
                   "capture class found (legend); markers at the peak of each detected spike's excess over the "
                   "linear response. A control-wire afterpulse shows at node c 10-20 ns after the spike.")]


def _trace_classes(run: RunData, count: int) -> np.ndarray | None:
    """Each archived trace's class from the `captures` table (its rows are the captures in the
    order taken, every one archived as a trace); None when the table is missing or does not match."""
    table = run.tables.get(CAPTURES_TABLE)
    if not table or "class" not in table or len(table["class"]) != count:
        return None
    return np.asarray(table["class"])


def _final_captures(run: RunData) -> dict[str, np.ndarray] | None:
    """The `captures` table's rows at the spiking amplitude of the last attempt (None for an
    archive from before the table existed)."""
    table = run.tables.get(CAPTURES_TABLE)
    if not table or "class" not in table or not len(table["class"]):
        return None
    kind, attempt = np.asarray(table["kind"]), np.asarray(table["attempt"])
    firing = kind == KIND_SPIKE
    if not firing.any():
        return {name: np.asarray(values)[firing] for name, values in table.items()}
    keep = firing & (attempt == attempt[firing].max())
    return {name: np.asarray(values)[keep] for name, values in table.items()}


def energy_histogram(run: RunData, directory: Path) -> list[Figure]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    captures = _final_captures(run)
    if captures is not None and captures["class"].size:
        # Per spike for captures with spikes; per capture for those without (no spike to divide by).
        energies = np.where(captures["spikes"] > 0, captures["spike_energy_j"], captures["energy_j"])
        classes = captures["class"]
        finite_energies = energies[np.isfinite(energies)]
        factor, unit = prefix_for(finite_energies if finite_energies.size else np.array([1e-18]), "J")
        shown = [code for code in CLASS_COLORS if np.isfinite(energies[classes == code]).any()]
        bins = np.histogram_bin_edges(finite_energies * factor, bins=min(60, max(10, finite_energies.size)))
        ax.hist([energies[(classes == code) & np.isfinite(energies)] * factor for code in shown], bins=bins,
                stacked=True, color=[CLASS_COLORS[c] for c in shown],
                label=[f"{CAPTURE_CLASSES[c]} ({int(np.sum(classes == c))})" for c in shown])
        _mean_line(ax, run.results.get("energy_per_spike_j"), factor, unit, "single-spike mean")
        ax.set(xlabel=label("energy above the baseline, per spike (per capture without one)", unit),
               ylabel="captures per bin")
        ax.legend(fontsize=7)
    else:        # an archive without the captures table: the spiking captures as one set
        energies = finite(run.tables.get("spike_energies", {}).get("spike_energy_j", []))[0]
        if energies.size:
            histogram_with_mean(ax, energies, "J", quantity="energy per spike", counted="spiking captures",
                                mean=run.scalar("energy_per_spike_j"), std=run.scalar("energy_per_spike_std_j"),
                                bins=min(30, max(5, energies.size // 3)), color="C4", mean_label="energy per spike",
                                digits=3)
        else:
            empty_note(ax, "no spiking capture: no energy per spike")
    ax.set_title("Energy per spike by capture class (baseline subtracted)")
    return [Figure(save(fig, directory / "energy_per_spike.png"), "Energy per spike",
                   "∫V·I dt per capture at the spiking amplitude minus the sub-threshold baseline scaled to the "
                   "amplitude, stacked by class: single spike; double spike (or more), per spike; spike followed by "
                   "a second control-wire switching (afterpulse: it releases the current earlier spikes left "
                   "circulating in the loop); spike without a control-wire reset; no spike, per capture. "
                   "energy_per_spike_j is the mean of the single spikes, shown with its interval.")]


def _mean_line(ax, quantity, factor: float, unit: str, what: str, horizontal: bool = False) -> None:
    """A scalar mean as a dashed line, its interval as a band, both labelled (a vertical line
    across a histogram, a horizontal one across a strip of values)."""
    if quantity is None or not math.isfinite(quantity.scalar()):
        return
    mean = quantity.scalar() * factor
    u = quantity.uncertainty
    interval = ""
    if u is not None and np.isfinite(u.low) and np.isfinite(u.high):
        low, high = float(u.low) * factor, float(u.high) * factor
        (ax.axhspan if horizontal else ax.axvspan)(low, high, color="k", alpha=0.15, lw=0)
        interval = f" [{low:.3g}, {high:.3g}] ({u.level:.0%})"
    (ax.axhline if horizontal else ax.axvline)(mean, color="k", ls="--", lw=1,
                                               label=f"{what} {mean:.3g} {unit}{interval}")


def synaptic_energy(run: RunData, directory: Path) -> list[Figure]:
    """Each capture's energy above the baseline by repeat: the synaptic events, marked by whether
    the post-neuron fired, each repeat's mean and the overall mean with its interval; captures
    that are not events in grey."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    table = run.tables.get(SYNAPTIC_EVENTS_TABLE, {})
    energy_j = np.asarray(table.get("event_energy_j", []), float)
    repeat = np.asarray(table.get("repeat", np.zeros(energy_j.size)), float)
    pre_spikes = np.asarray(table.get("pre_spikes", np.zeros(energy_j.size)))
    post = np.asarray(table.get("post_spiked", np.zeros(energy_j.size))).astype(bool)
    # As synaptic_energy.is_event: one pre spike that switched the synapse (archives from before
    # the `synapse_switched` column counted every single pre spike).
    switched = np.asarray(table.get("synapse_switched", np.ones(energy_j.size))).astype(bool)
    single = (pre_spikes == 1) & np.isfinite(energy_j)
    event = single & switched
    title = "Energy per synaptic event by repeat (baseline subtracted)"
    if event.any():
        factor, unit = prefix_for(energy_j[event], "J")
        # Each repeat's captures side by side in the order taken (no random jitter: the figure is reproducible).
        offset = np.zeros(energy_j.size)
        for k in np.unique(repeat):
            mine = np.flatnonzero(repeat == k)
            offset[mine] = np.linspace(-0.25, 0.25, mine.size) if mine.size > 1 else 0.0
        x = repeat + offset
        other = ~single & np.isfinite(energy_j)
        for keep, style, what in ((event & post, {"marker": "o", "color": "C3"}, "event, post-neuron fired"),
                                  (event & ~post, {"marker": "o", "color": "C0", "mfc": "none"},
                                   "event, post-neuron did not fire"),
                                  (single & ~switched, {"marker": "+", "color": "C1"},
                                   "one pre spike, the synapse did not switch"),
                                  (other, {"marker": "x", "color": "0.6"}, "no pre spike, or two")):
            if keep.any():
                ax.plot(x[keep], energy_j[keep] * factor, ls="none", ms=6, **style,
                        label=f"{what} ({int(keep.sum())})")
        repeats = run.tables.get(SYNAPTIC_REPEATS_TABLE, {})
        for n, (k, mean) in enumerate(zip(np.asarray(repeats.get("repeat", []), float),
                                          np.asarray(repeats.get("mean_energy_j", []), float))):
            if math.isfinite(mean):
                ax.hlines(mean * factor, k - 0.35, k + 0.35, color="k", lw=2,
                          label="repeat's mean over its events" if n == 0 else None)
        _mean_line(ax, run.results.get("synaptic_energy_j"), factor, unit, "synaptic_energy_j, over every event",
                   horizontal=True)
        ax.set_xticks(np.unique(repeat))
        ax.set(xlabel="repeat", ylabel=label("weight source's energy above the baseline", unit))
        ax.legend(fontsize=7)
        if run.scalar("repeats_disagree") == 1:
            title += f"\nrepeats disagree: their means span {run.scalar('repeats_spread') * 100:.0f} % of the mean"
    else:
        empty_note(ax, "no synaptic event (no capture with one pre spike that switched the synapse)")
    ax.set_title(title, fontsize=10)
    return [Figure(save(fig, directory / "synaptic_energy.png"), "Energy per synaptic event",
                   "Each capture's energy from the weight source, s·I_w·∫V_w dt over the record less the "
                   "sub-threshold baseline, by repeat (each repeat its own references): the synaptic events "
                   "(one pre spike that switched the synapse), filled where the post-neuron fired; single pre "
                   "spikes that did not switch it (+) and captures with no pre spike or two (grey) are not "
                   "events. Bars: each repeat's mean; dashed line and band: synaptic_energy_j, the mean over "
                   "every event with its interval.")]


def _references(run: RunData) -> list[tuple[str, str, float, str]]:
    """(key, platform, SOPS/W, source) for every reference figure the run archived."""
    found = []
    for name, quantity in run.results.items():
        if name.endswith("_source") and name[:-7] + "_sops_per_w" in run.results:
            key = name[:-7]
            platform, _, source = str(quantity.value).partition(": ")
            found.append((key, platform, run.scalar(f"{key}_sops_per_w"), source))
    return found


def _figure(run: RunData, name: str) -> tuple[float, float, float]:
    """(value, interval low, high) of a result (NaN where missing)."""
    quantity = run.results.get(name)
    if quantity is None:
        return math.nan, math.nan, math.nan
    u = quantity.uncertainty
    if u is None:
        return quantity.scalar(), math.nan, math.nan
    return quantity.scalar(), float(np.ravel(u.low)[0]), float(np.ravel(u.high)[0])


def efficiency(run: RunData, directory: Path) -> list[Figure]:
    plt = pyplot()
    references = _references(run)
    # Without `synaptic_energy_ratio` the run had a measured synaptic energy: this chip's SOPS/W
    # rests on both measured energies and is drawn as measured, not hatched.
    assumed = "synaptic_energy_ratio" in run.results
    ratio = run.scalar("synaptic_energy_ratio")
    fan_out = run.scalar("fan_out")
    assumption = f"assumes synaptic energy = {ratio:g} × spike energy"
    per_operation = f"synaptic event + spike / fan-out ({fan_out:g})"
    # (label, (value, low, high), colour, hatched?): per spike as measured, then the synaptic
    # figures (resting on the assumed ratio: archives before the split named them without suffix).
    bars = [("This chip per spike, on chip", _figure(run, "spikes_per_joule_on_chip"), "C3", False),
            ("This chip per spike, at the wall plug", _figure(run, "spikes_per_joule_wall_plug"), "C1", False)]
    for where, name in (("on chip", "sops_per_w_on_chip"), ("at the wall plug", "sops_per_w_wall_plug")):
        found = name + ASSUMING if name + ASSUMING in run.results else name
        what = "per synaptic event" if assumed else "per synaptic operation (measured)"
        bars.append((f"This chip {what}, {where}", _figure(run, found), "C3" if where == "on chip" else "C1",
                     assumed))
    notes = []
    references.sort(key=lambda ref: -ref[2] if math.isfinite(ref[2]) else 0.0)
    for n, (_, platform, value, source) in enumerate(references, start=1):
        bars.append((f"{platform} [{n}]", (value, math.nan, math.nan), "C0", False))
        notes.append(f"[{n}] {source}")
    overhead = run.scalar("cooling_overhead_w_per_w")
    footnote = "\n".join(textwrap.fill(note, 150) for note in notes)
    height_in = 5.2 + 0.12 * (footnote.count("\n") + 1)
    fig, ax = plt.subplots(figsize=(9.0, height_in))
    values = np.array([b[1][0] for b in bars], float)
    shown = np.where(np.isfinite(values) & (values > 0), values, np.nan)
    for y, (_, (value, low, high), color, hatched) in enumerate(bars):
        if not math.isfinite(shown[y]):
            continue
        ax.barh(y, value, color=color, alpha=0.45 if hatched else 1.0, hatch="//" if hatched else None,
                edgecolor="k" if hatched else color, lw=0.6)
        if math.isfinite(low) and math.isfinite(high):
            ax.errorbar(value, y, xerr=[[value - low], [high - value]], fmt="none", ecolor="k", capsize=3, lw=1)
        ax.text(value * 1.6, y, f"{value:.2g}", va="center", fontsize=8)
    ax.set_yticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    if np.isfinite(shown).any():
        ax.set_xlim(np.nanmin(shown) / 10, np.nanmax(shown) * 30)
        for y, (title, _, _, hatched) in enumerate(bars):     # what this chip's synaptic bars rest on
            if title.startswith("This chip per synaptic") and math.isfinite(shown[y]):
                ax.text(np.nanmin(shown) / 5, y, assumption if hatched else f"measured: {per_operation}",
                        va="center", fontsize=7, style="italic",
                        bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1})
    from matplotlib.patches import Patch

    if assumed:
        legend = [Patch(facecolor="C3", label="measured (energy per spike), with its interval"),
                  Patch(facecolor="C3", alpha=0.45, hatch="//", edgecolor="k", label=assumption + " (hatched)")]
    else:
        legend = [Patch(facecolor="C3", label="measured, with intervals")]
    ax.legend(handles=legend + [Patch(facecolor="C0", label="published figures")], fontsize=7, loc="lower right")
    ax.set(xlabel="operations per joule (spikes/J per spike; SOPS/W = 1/J per synaptic "
                  + ("event)" if assumed else "operation)"),
           title=f"Energy efficiency (wall plug: cooling overhead {overhead:g} W/W)")
    fig.text(0.01, 0.01, footnote, fontsize=6, va="bottom", ha="left")
    # Leave room at the bottom for the footnote: its lines are 6 pt at ~1.25 line spacing.
    lines = footnote.count("\n") + 1 if notes else 0
    fig.tight_layout(rect=(0, 0.015 + lines * 6 * 1.25 / 72 / height_in, 1, 1))
    path = directory / "efficiency.png"
    fig.savefig(path, dpi=130)
    plt.close(fig)
    sources = "\n".join(f"{n}. {platform}: {source}" for n, (_, platform, _, source) in enumerate(references, start=1))
    if assumed:
        caption = ("Spikes per joule of this chip from the measured energy per spike (solid, with the energy's "
                   "interval carried through), and SOPS/W per synaptic event, which this chip cannot measure: "
                   f"hatched, it {assumption} (synaptic_energy_ratio, an assumption from the design "
                   "simulation); on chip and at the wall plug, beside published figures:\n" + sources)
    else:
        level = _level(run, "sops_per_w_on_chip")
        caption = ("Spikes per joule of this chip from the measured energy per spike, and SOPS/W from the measured "
                   f"energies per spike and per synaptic event, per synaptic operation {per_operation} (solid; "
                   "error bars at the "
                   f"intervals' levels: the energy per spike's, and {level} for SOPS/W, the joint region of "
                   "the two measured energies' intervals); on chip and at the wall plug, beside published "
                   "figures:\n" + sources)
    return [Figure(path, "Energy efficiency", caption)]


def _level(run: RunData, name: str) -> str:
    quantity = run.results.get(name)
    u = quantity.uncertainty if quantity is not None else None
    return f"{u.level * 100:g} %" if u is not None else "no interval archived"
