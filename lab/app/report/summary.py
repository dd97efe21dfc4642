"""The report's first table: the chip's key figures, each with its uncertainty, the conditions it
was measured at, the design value the chip file gives at that temperature, and the deviation in
standard uncertainties. A figure that was not measured is a row saying so, never left out.

Design values come from the chip file archived with the runs:
- a wire's switching current at the measured temperature from `contracts.files.chip`
  (`wire_switching_current_a`, the one owner of I_sw(T));
- what the ports see (the bias port's switching current, the input current that fires the
  neuron) from `procedures.design.DesignHints`, the one owner of the neuron's current division,
  handed the chip file with each wire's Jc taken to the measured temperature;
- the bias port's resistive branch from the chip's DC network (inductors short, wires open);
- refractory period and energy per spike only where the chip file documents them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from contracts.files.chip import GROUND, ChipDocument, ChipFileError, chip_document, switching_current_ratio, \
    wire_switching_current_a
from contracts.units import format_si, prefix_for
from lab.app.report.document import Block, Bullets, Heading, Paragraph, Table
from lab.app.report.runs import Quantity, RunData, archived_mapping
from lab.app.report.values import companion, level_text, numbers
from procedures.catalog import SYNAPTIC, has_synapse
from procedures.efficiency import ASSUMING
from procedures.synaptic_energy import REPEAT_AGREEMENT
from procedures.analysis.distributions import normal_quantile


@dataclass(frozen=True)
class Design:
    """A design value (SI) and what it is, or None and why there is none."""
    value_si: float | None
    why: str


@dataclass(frozen=True)
class Chip:
    """The chip file archived with the runs: its YAML tree and its typed document."""
    tree: Mapping[str, Any]
    document: ChipDocument | None

    @classmethod
    def from_runs(cls, runs: Sequence[RunData]) -> Chip:
        text = next((r.chip_text for r in runs if r.chip_text), "")
        tree = archived_mapping(text)
        try:
            document = chip_document(tree, "archived chip file") if tree else None
        except ChipFileError:
            document = None
        return cls(tree, document)

    @property
    def wires(self):
        return [e for e in self.document.elements if e.kind == "nanowire"] if self.document else []

    def wire_currents_a(self, temperature_k: float) -> dict[str, float | None]:
        return {e.name: wire_switching_current_a(e.wire, temperature_k) for e in self.wires}

    def at(self, temperature_k: float, bias_a: float | None = None) -> dict | None:
        """The chip file's tree as it stands at `temperature_k`: each wire's Jc taken from its
        reference temperature to this one (so C·Jc·w·d is I_sw(T)), the bias source at `bias_a`.
        None if a wire leaves out what that needs."""
        if self.document is None or not self.wires:
            return None
        tree = copy.deepcopy(dict(self.tree))
        by_name = {str(e.get("name")): e for e in tree.get("elements", []) if isinstance(e, dict)}
        for wire in self.wires:
            values = wire.wire
            if any(k not in values for k in ("jc_a_per_m2", "tc_k", "jc_reference_temperature_k")):
                return None
            ratio = switching_current_ratio(temperature_k, values["tc_k"], values["jc_reference_temperature_k"])
            by_name[wire.name]["jc"] = {"value": values["jc_a_per_m2"] * ratio, "unit": "A/m^2",
                                        "source": f"taken to {temperature_k:g} K"}
        if bias_a is not None and math.isfinite(bias_a):
            source = by_name.get(str(((tree.get("ports") or {}).get("bias") or {}).get("source")))
            if source is not None:
                source["current"] = {"value": bias_a, "unit": "A", "source": "the run's bias"}
        return tree

    def arrangement(self) -> str:
        """The wires and what joins them, as the chip file draws them."""
        if self.document is None:
            return "no chip file archived"
        parts = [f"{e.name} ({e.nodes[0]}→{e.nodes[1]})" for e in self.wires]
        links = [f"{e.name} ({e.nodes[0]}–{e.nodes[1]})" for e in self.document.elements
                 if e.kind == "inductor" and GROUND not in e.nodes]
        return "nanowires " + ", ".join(parts) + (", joined by the inductor " + ", ".join(links) if links else "")


# -- design values --------------------------------------------------------------------------------

def port_switching_design(chip: Chip, temperature_k: float) -> Design:
    from procedures.design import DesignHints

    currents = chip.wire_currents_a(temperature_k)
    tree = chip.at(temperature_k)
    if tree is None or not currents or None in currents.values():
        return Design(None, "the chip file does not give every wire's Jc, w, d, Tc and Jc reference temperature")
    hints = DesignHints.from_chip(tree)
    total = sum(currents.values())
    if not math.isfinite(total):
        return Design(None, "a wire's Jc reference temperature is at or above its Tc")
    if not math.isclose(hints.switching_current_a, total, rel_tol=1e-9):
        return Design(None, "the chip is not the two-wire neuron procedures/design.py reads")
    return Design(total, "I_sw,port = " + " + ".join(f"I_sw,{n}" for n in currents) + f" at {temperature_k:.3g} K")


def threshold_design(chip: Chip, temperature_k: float, bias_a: float) -> Design:
    from procedures.design import FALLBACK_THRESHOLD_A, DesignHints, documented_threshold_a

    documented = documented_threshold_a(chip.tree)
    if documented is not None:
        return Design(documented, "documented in the chip file (temperature not stated)")
    tree = chip.at(temperature_k, bias_a)
    if tree is None:
        return Design(None, "the chip file does not give every wire's Jc, Tc and Jc reference temperature")
    value = DesignHints.from_chip(tree).threshold_a
    if value == FALLBACK_THRESHOLD_A:
        return Design(None, "the chip file's netlist gives no estimate (procedures/design.py)")
    return Design(value, f"first wire at I_sw(T) by DC inductive division, at {temperature_k:.3g} K"
                         + (f", bias {format_si(bias_a, 'A')}" if math.isfinite(bias_a) else ""))


def port_resistance_design(chip: Chip) -> Design:
    """DC resistance of the bias port with every wire resistive: inductors are shorts at DC and a
    switched wire's hotspot (up to its normal resistance, ~10⁵ Ω) is open beside the shunts."""
    doc = chip.document
    source = doc.ports.get("bias") if doc else None
    element = next((e for e in doc.elements if e.name == source), None) if doc else None
    if element is None:
        return Design(None, "the chip file has no bias port")
    node = next(n for n in element.nodes if n != GROUND) if any(n != GROUND for n in element.nodes) else GROUND
    parent = {n: n for n in (*doc.nodes, GROUND)}

    def find(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    for e in doc.elements:
        if e.kind == "inductor":
            parent[find(e.nodes[0])] = find(e.nodes[1])
    groups = sorted({find(n) for n in doc.nodes if find(n) != find(GROUND)})
    if find(node) == find(GROUND) or not groups:
        return Design(None, "the bias port is shorted to ground at DC")
    index = {g: k for k, g in enumerate(groups)}
    g_matrix = np.zeros((len(groups), len(groups)))
    for e in doc.elements:
        if e.kind != "resistor":
            continue
        a, b = (index.get(find(n)) for n in e.nodes)
        for i, j in ((a, b), (b, a)):
            if i is not None:
                g_matrix[i, i] += 1.0 / e.value_si
                if j is not None:
                    g_matrix[i, j] -= 1.0 / e.value_si
    current = np.zeros(len(groups))
    current[index[find(node)]] = 1.0
    try:
        volts = np.linalg.solve(g_matrix, current)
    except np.linalg.LinAlgError:
        return Design(None, "no resistive path from the bias port to ground")
    shunts = [e.name for e in doc.elements if e.kind == "resistor"]
    return Design(float(volts[index[find(node)]]), " ∥ ".join(shunts) + " at DC, wires open")


def documented_design(chip: Chip, *keys: str) -> Design:
    from procedures.design import find_number

    value = find_number(chip.tree, *keys)
    if value is None:
        return Design(None, "the chip file states no design value")
    return Design(value, "documented in the chip file")


# -- the table ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyFigure:
    """One key figure: where it is measured and how its design value is found."""
    label: str                      # "{result}" in it is replaced by the result's name
    procedure: str
    #: The result's name, or names in order of preference: the first the run archived is shown
    #: (a measured figure before the one an older or assumed-ratio run archived in its place).
    result: str | tuple[str, ...]
    design: Callable[[Chip, float, float], Design] | None = None
    no_design: str = ""             # why there is no design value (when `design` is None)
    #: The conditions cell from (run, result name, stage temperature as text); None: temperature and bias.
    conditions: Callable[[RunData, str, str], str] | None = None
    #: What the run said is wrong with this figure ("" if nothing): written in the row, which is marked.
    warning: Callable[[RunData, str], str] | None = None
    #: Whether the row belongs in this report (chip, runs by procedure); None: always.
    shown: Callable[[Chip, Mapping[str, RunData]], bool] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.result,) if isinstance(self.result, str) else self.result

    def label_for(self, name: str) -> str:
        return self.label.replace("{result}", name)


def with_synapse(chip: Chip, runs: Mapping[str, RunData]) -> bool:
    """A synaptic figure is a row on a chip with a synapse, or when a synaptic procedure ran."""
    return has_synapse(chip.tree) or any(name in runs for name in SYNAPTIC)


def _setting(run: RunData, name: str, units: str) -> str:
    value = run.scalar(name)
    if not math.isfinite(value) and name in run.parameters_resolved:
        value = run.parameters_resolved[name].scalar()
    return format_si(value, units) if math.isfinite(value) else "not archived"


def synaptic_energy_conditions(run: RunData, name: str, temperature: str) -> str:
    events, repeats = run.scalar("synaptic_events"), run.parameters.get("repeats")
    counted = (f"; {events:.0f} synaptic events in {repeats.scalar():.0f} repeats"
               if math.isfinite(events) and repeats is not None else "")
    return (f"{temperature}; weight {_setting(run, 'weight_a', 'A')}, pre bias {_setting(run, 'bias_a', 'A')}, "
            f"post bias {_setting(run, 'post_bias_a', 'A')}" + counted)


def repeats_warning(run: RunData, name: str) -> str:
    if run.scalar("repeats_disagree") != 1:
        return ""
    spread = run.scalar("repeats_spread")
    return ("repeats disagree: their means span "
            + (f"{spread * 100:.0f} % of the mean" if math.isfinite(spread) else "more")
            + f" (agreement is within {REPEAT_AGREEMENT * 100:g} %)")


def handed_on_repeats_warning(run: RunData, name: str) -> str:
    """The efficiency's figures from a measured synaptic energy whose repeats disagreed."""
    if run.scalar("synaptic_repeats_disagree") != 1 or "synaptic_energy_ratio" in run.results:
        return ""
    return f"synaptic_energy's repeats disagree (their means differ by more than {REPEAT_AGREEMENT * 100:g} %)"


def transfer_conditions(run: RunData, name: str, temperature: str) -> str:
    probability = run.results.get("transfer_probability")
    weights = np.asarray(probability.axis_values, float) if probability is not None and \
        probability.axis_values is not None else np.array([])
    swept = (f"; {weights.size} weights from {format_si(weights.min(), 'A')} to {format_si(weights.max(), 'A')}"
             if weights.size else "")
    onset = run.results.get(name)
    how = f"; {onset.exact}" if onset is not None and onset.exact else ""
    return (f"{temperature}; pre bias {_setting(run, 'bias_a', 'A')}, post bias {_setting(run, 'post_bias_a', 'A')}"
            + swept + how)


def efficiency_conditions(run: RunData, name: str, temperature: str) -> str:
    """What an efficiency figure rests on: the measured energies, or the assumed synaptic ratio
    (an archive naming `synaptic_energy_ratio`; older ones named such figures without the suffix)."""
    if name.startswith("spikes_per_joule"):
        text = "from the measured energy per spike"
    elif "synaptic_energy_ratio" in run.results:
        text = (f"from the energy per spike, assuming synaptic energy = {run.scalar('synaptic_energy_ratio'):g} × "
                "spike energy (`synaptic_energy_ratio`)")
    else:
        fan_out = run.scalar("fan_out")
        text = ("from the measured energies per spike and per synaptic event: per operation E_syn + E_spike / "
                f"fan-out ({fan_out:g})" if math.isfinite(fan_out) else "fan-out not archived")
    if "wall_plug" in name:
        text += f"; cooling overhead {run.scalar('cooling_overhead_w_per_w'):g} W/W"
    return text


def ratio_conditions(run: RunData, name: str, temperature: str) -> str:
    return (f"E_syn {_setting(run, 'synaptic_energy_j', 'J')} / E_spike {_setting(run, 'energy_per_spike_j', 'J')}, "
            "the measured means efficiency was handed")


def _efficiency(name: str, *alternatives: str, synaptic: bool = False) -> KeyFigure:
    return KeyFigure("Efficiency `{result}`", "efficiency", (name, *alternatives), None,
                     "the chip file gives no efficiency", conditions=efficiency_conditions,
                     warning=handed_on_repeats_warning if synaptic else None)


FIGURES: tuple[KeyFigure, ...] = (
    KeyFigure("Switching current (bias port)", "iv_sweep", "switching_current_mean_a",
           lambda chip, t, bias: port_switching_design(chip, t)),
    KeyFigure("Retrapping current (bias port)", "iv_sweep", "retrapping_current_a", None,
           "the shunts set it through the relaxation dynamics: no closed-form design value"),
    KeyFigure("Resistive-branch resistance (bias port)", "iv_sweep", "resistive_branch_ohm",
           lambda chip, t, bias: port_resistance_design(chip)),
    KeyFigure("Threshold", "strength_duration", "threshold_a", None, "finite pulse: see the rheobase's"),
    KeyFigure("Rheobase", "strength_duration", "rheobase_a", threshold_design),
    KeyFigure("Chronaxie", "strength_duration", "chronaxie_s", None, "the chip file gives no time constant"),
    KeyFigure("Refractory period", "refractory", "refractory_period_s",
           lambda chip, t, bias: documented_design(chip, "refractory_period", "refractory_window",
                                                   "refractory_s", "refractory_period_s")),
    KeyFigure("f–I onset current", "firing_rate", "onset_current_a", None,
              "the onset of repeated firing under a DC input needs the relaxation dynamics; the first wire's "
              "DC switching (the rheobase's design value) is only where a single spike becomes possible"),
    KeyFigure("f–I gain", "firing_rate", "firing_gain_hz_per_a", None, "the chip file gives no f–I slope"),
    KeyFigure("Energy per spike", "energy_per_spike", "energy_per_spike_j",
           lambda chip, t, bias: documented_design(chip, "energy_per_spike", "energy_per_spike_j")),
    KeyFigure("Energy per synaptic event", "synaptic_energy", "synaptic_energy_j",
              lambda chip, t, bias: documented_design(chip, "energy_per_synaptic_event", "synaptic_energy",
                                                      "synaptic_energy_j"),
              conditions=synaptic_energy_conditions, warning=repeats_warning, shown=with_synapse),
    KeyFigure("Synaptic / spike energy (measured)", "efficiency", "synaptic_to_spike_energy", None,
              "the chip file states none",
              conditions=ratio_conditions,
              warning=handed_on_repeats_warning,
              shown=lambda chip, runs: with_synapse(chip, runs) or "synaptic_to_spike_energy" in getattr(
                  runs.get("efficiency"), "results", {})),
    KeyFigure("Synaptic weight onset", "synaptic_transfer", "weight_onset_a",
              lambda chip, t, bias: documented_design(chip, "weight_onset", "weight_onset_a"),
              conditions=transfer_conditions, shown=with_synapse),
    _efficiency("spikes_per_joule_on_chip"),
    _efficiency("spikes_per_joule_wall_plug"),
    # A measured figure wins over one resting on the assumed synaptic ratio (a run archives one of them).
    _efficiency("sops_per_w_on_chip", "sops_per_w_on_chip" + ASSUMING, synaptic=True),
    _efficiency("sops_per_w_wall_plug", "sops_per_w_wall_plug" + ASSUMING, synaptic=True),
)

HEADER = ("figure", "measured", "interval (level)", "standard uncertainty", "design value", "deviation (σ)",
          "conditions", "source")


def bias_of(run: RunData) -> float:
    for found in (run.parameters.get("bias_a"), run.parameters_resolved.get("bias_a"), run.results.get("bias_a")):
        if found is not None and found.is_scalar and found.scalar() > 0:
            return found.scalar()
    return math.nan


def temperature_of(run: RunData, cooldown: RunData | None) -> tuple[float, str]:
    """(stage temperature, where it comes from) for a run."""
    if math.isfinite(run.stage_temperature_k):
        return run.stage_temperature_k, "run start"
    if cooldown is not None and math.isfinite(cooldown.scalar("stable_temperature_k")):
        return cooldown.scalar("stable_temperature_k"), "cooldown's stable temperature"
    return math.nan, ""


def standard_of(quantity: Quantity, run: RunData, name: str, k: int | None) -> tuple[float, bool]:
    """(standard uncertainty, True if taken from the interval's half-width as a normal one)."""
    u = quantity.uncertainty
    pick = (lambda a: float(np.asarray(a, float).ravel()[k if np.ndim(a) else 0])) if k is not None else \
        (lambda a: float(np.asarray(a, float).ravel()[0]))
    if u is not None:
        standard = pick(u.standard)
        if math.isfinite(standard) and standard > 0:
            return standard, False
        low, high = pick(u.low), pick(u.high)
        if math.isfinite(low) and math.isfinite(high) and high > low:
            return (high - low) / 2 / normal_quantile(0.5 + u.level / 2), True
        return math.nan, False
    stderr = companion(name, "stderr", run.results)
    return (run.results[stderr].scalar(), False) if stderr else (math.nan, False)


def _row(figure_label: str, run: RunData, name: str, quantity: Quantity, k: int | None, design: Design,
         conditions: str) -> tuple[tuple[str, ...], bool]:
    value = float(np.asarray(quantity.value, float).ravel()[k]) if k is not None else quantity.scalar()
    u = quantity.uncertainty
    low = high = math.nan
    if u is not None:
        low = float(np.asarray(u.low, float).ravel()[k if k is not None and np.ndim(u.low) else 0])
        high = float(np.asarray(u.high, float).ravel()[k if k is not None and np.ndim(u.high) else 0])
    standard, from_interval = standard_of(quantity, run, name, k)
    factor, unit = prefix_for([value], quantity.units)
    shown_value, interval, shown_standard = numbers(value, low, high, standard if not from_interval else math.nan,
                                                    factor)
    if from_interval:
        shown_standard = f"≈{numbers(value, math.nan, math.nan, standard, factor)[2]}"
    missing = u is None and not math.isfinite(standard)
    design_text, deviation = "—", "—"
    if design.value_si is not None:
        design_text = format_si(design.value_si, quantity.units)
        if math.isfinite(standard) and standard > 0 and math.isfinite(value):
            deviation = f"{(value - design.value_si) / standard:+.1f}"
        else:
            deviation = "— (no σ)"
    design_text += f" ({design.why})" if design.why else ""
    with_unit = lambda text: f"{text} {unit}".rstrip() if text else ""
    return ((figure_label, with_unit(shown_value) if math.isfinite(value) else "n/a",
             (f"{with_unit(interval)} ({level_text(u.level)})" if interval and u else
              ("**no uncertainty archived**" if missing else "—")),
             with_unit(shown_standard) or "—", design_text, deviation, conditions,
             f"{run.procedure} `{name}`"), missing)


def _not_measured(figure: KeyFigure, why: str) -> tuple[str, ...]:
    name = figure.names[0]
    return (figure.label_for(name), "**not measured**", "—", "—", "—", "—", "—", f"{figure.procedure} `{name}`: {why}")


def summary_blocks(shown_runs: Sequence[RunData]) -> list[Block]:
    """The summary section: the key-figure table and the notes that say how to read it."""
    by_procedure = {r.procedure: r for r in shown_runs}
    chip = Chip.from_runs(shown_runs)
    cooldown = by_procedure.get("cooldown")
    rows: list[tuple[str, ...]] = []
    flagged: set[int] = set()
    temperatures: list[float] = []
    shown_names: set[str] = set()

    def add(row: tuple[str, ...], missing: bool = False) -> None:
        if missing:
            flagged.add(len(rows))
        rows.append(row)

    for figure in FIGURES:
        if figure.shown is not None and not figure.shown(chip, by_procedure):
            continue
        run = by_procedure.get(figure.procedure)
        if run is None:
            add(_not_measured(figure, "no run in this directory"), True)
            continue
        name = next((n for n in figure.names if n in run.results), figure.names[0])
        quantity = run.results.get(name)
        if quantity is None or quantity.is_text:
            add(_not_measured(figure, f"not archived (run {run.status})"), True)
            continue
        temperature_k, where = temperature_of(run, cooldown)
        bias_a = bias_of(run)
        conditions = (f"{temperature_k:.3f} K ({where})" if math.isfinite(temperature_k) else "temperature not archived")
        if figure.conditions is not None:
            conditions = figure.conditions(run, name, conditions)
        elif figure.procedure == "iv_sweep":
            conditions += "; bias swept"
        elif math.isfinite(bias_a):
            conditions += f"; bias {format_si(bias_a, 'A')}"
        warning = figure.warning(run, name) if figure.warning is not None else ""
        if warning:
            conditions += f"; **{warning}**"
        if math.isfinite(temperature_k) and figure.procedure != "efficiency":   # it computes, measures nothing
            temperatures.append(temperature_k)
        shown_names.add(name)
        if figure.design is not None and math.isfinite(temperature_k):
            design = figure.design(chip, temperature_k, bias_a)
        elif figure.design is not None:
            design = Design(None, "the measurement temperature is not archived")
        else:
            design = Design(None, figure.no_design)
        label = figure.label_for(name)
        if quantity.is_scalar:
            row, missing = _row(label, run, name, quantity, None, design, conditions)
            add(row, missing or bool(warning))
            continue
        axis = np.asarray(quantity.axis_values, float) if quantity.axis_values is not None else None
        for k in range(np.size(quantity.value)):
            at = (f" at {quantity.axis_name} = {format_si(axis[k], quantity.axis_units, 3)}"
                  if axis is not None else f" [{k}]")
            row, missing = _row(label + at, run, name, quantity, k, design, conditions)
            add(row, missing or bool(warning))

    notes = design_notes(chip, temperatures) + [note for name, note in SYNAPTIC_NOTES.items() if name in shown_names]
    return [Heading(2, "Summary: key figures"),
            Paragraph("Each figure with its interval at the level named, its standard uncertainty, the design "
                      "value from the chip file at the stage temperature of the run, and the deviation "
                      "(measured − design) / standard uncertainty. Figures not measured are listed as such; "
                      "a measured figure archived without any uncertainty is marked."),
            Table(HEADER, tuple(rows), "summary", frozenset(flagged)),
            Bullets(tuple(notes))]


#: How to read the synaptic rows, said when they are shown.
SYNAPTIC_NOTES = {
    "synaptic_energy_j": "Energy per synaptic event: what the weight source delivers when a pre spike switches the "
                         "synapse, above the sub-threshold baseline, averaged over every event of every repeat "
                         "(synaptic_energy); repeats whose means differ by more than "
                         f"{REPEAT_AGREEMENT * 100:g} % of the mean are said to disagree.",
    "synaptic_to_spike_energy": "Synaptic / spike energy: the ratio of the two measured means as efficiency was "
                                "handed them, its interval from the corners of the two energies' intervals (the "
                                "ratio rises with E_syn and falls with E_spike), at the product of their levels "
                                "(two independent measurements).",
    "weight_onset_a": "Synaptic weight onset: the weight (control) current at which the synapse takes effect, "
                      "where the transfer probability gets halfway from its value at the lowest weight to that "
                      "at the highest, interpolated between the measured weights; its interval from draws of "
                      "each weight's probability (Jeffreys posterior) with the crossing anywhere between the two "
                      "weights around it (the transfer figure shows each weight's Wilson interval).",
}


def design_notes(chip: Chip, temperatures: Sequence[float]) -> list[str]:
    name = chip.tree.get("name", "?") if chip.tree else "?"
    notes = [f"Design values: chip file `{name}`, {chip.arrangement()}."]
    wires = chip.wires
    if wires:
        t_k = float(np.median(temperatures)) if temperatures else (chip.document.temperature_k if chip.document
                                                                    else math.nan)
        currents = chip.wire_currents_a(t_k) if math.isfinite(t_k) else {}
        each = ", ".join(f"{n} {format_si(i, 'A')}" if i is not None else f"{n} not computable"
                         for n, i in currents.items())
        notes.append("Switching current of a wire at temperature T: I_sw(T) = C·Jc·w·d · [(1 − (T/Tc)²) / "
                     "(1 − (T_ref/Tc)²)]^{3/2}, Jc given at T_ref (physics reference §2.5; "
                     f"`contracts.files.chip.wire_switching_current_a`). At {t_k:.3f} K: {each}.")
    notes += [
        "Port switching current: DC current into the bias port divides between the wires by inductance; the "
        "wire that reaches its I_sw first switches only transiently (its current moves into the superconducting "
        "loop as trapped flux and the port stays at zero volts), so a steady voltage needs every wire at its "
        "I_sw at once: I_sw,port = Σ I_sw,wire (`procedures/design.py`, DesignHints.switching_current_a). "
        "Each switch leaves flux in the loop, and flux moves in finite amounts, so repeated sweeps switch the "
        "port somewhat below that sum, by what the flux left by earlier sweeps sets: noise-free sweeps of the "
        "emulated default neuron at 3.17 K switch 2-82 nA below it, 45.5 nA on average (`validation/ground_truth.py`, "
        "`benchmarks/coverage_truths.json`). A "
        "deviation of that size below the sum, however many σ, is that effect; one above it is not.",
        "Rheobase: the input current at which the first wire reaches I_sw(T) by the DC (long-pulse) "
        "inductive division of input and bias currents, linear inductance (DesignHints.threshold_a). The first "
        "wire can be the control wire when the bias alone holds it near its I_sw(T): its switching resets the loop "
        "and need not fire the output, and the nonlinear inductance moves the division by some 10 %, so read this "
        "deviation as a check of the design estimate, not of the chip. A finite pulse's threshold has no "
        "closed-form design value (it needs the transient).",
        "Resistive branch: the DC resistance from the bias port to ground with the inductors as shorts and the "
        "switched wires open (a hotspot's resistance, up to the wire's normal resistance, is far above the shunts).",
        "Deviation: (measured − design) / standard uncertainty; ≈ marks a standard uncertainty taken as the "
        "interval's half-width over the normal quantile of its level (the method gave none). Counts and settings "
        "are exact.",
    ]
    return notes


# -- the cooldown, in words -----------------------------------------------------------------------

def cooldown_account(run: RunData, later: Sequence[RunData] = ()) -> str:
    """What the cooldown's temperature log shows, from the data: where it started, how it reached
    the setpoint, whether it went past it by more than the reading noise, and (from the snapshots of
    the `later` runs) whether the stage was still there when they started."""
    table = run.tables.get("temperature_log", {})
    time_s = np.asarray(table.get("time_s", []), float)
    temperature_k = np.asarray(table.get("temperature_k", []), float)
    keep = np.isfinite(time_s) & np.isfinite(temperature_k)
    time_s, temperature_k = time_s[keep], temperature_k[keep]
    setpoint = run.parameters.get("setpoint_k")
    tolerance = run.parameters.get("tolerance_k")
    if time_s.size < 2 or setpoint is None:
        return "The temperature log holds too few readings to describe."
    setpoint_k = setpoint.scalar()
    tolerance_k = tolerance.scalar() if tolerance is not None else 0.01
    start_k = temperature_k[0]
    sign = 1.0 if setpoint_k >= start_k else -1.0
    parts = [f"What the figure shows: the stage {'warms' if sign > 0 else 'cools'} from {start_k:.3f} K (first "
             f"reading) to the {setpoint_k:g} K setpoint, read every {np.median(np.diff(time_s)):g} s of lab time."]
    outside = np.nonzero(np.abs(temperature_k - setpoint_k) > tolerance_k)[0]
    entered = 0 if outside.size == 0 else int(outside[-1]) + 1
    if entered < temperature_k.size:
        settled = temperature_k[max(entered, temperature_k.size // 2):]
        noise_k = float(np.std(settled, ddof=1)) if settled.size > 2 else 0.0
        past_k = float(((temperature_k - setpoint_k) * sign).max())
        parts.append(f"From {time_s[entered] / 60:.1f} min on every reading lies within ±{tolerance_k * 1e3:g} mK of "
                     f"the setpoint; over the last {settled.size} readings they scatter by {noise_k * 1e3:.2f} mK "
                     f"(sample σ) around {settled.mean():.4f} K.")
        if past_k > max(3 * noise_k, tolerance_k):
            parts.append(f"The controller overshoots: the furthest reading lies {past_k * 1e3:.1f} mK past the "
                         "setpoint before it settles.")
        elif past_k > 0:
            parts.append(f"The approach is from one side, with no overshoot beyond the reading noise: the furthest "
                         f"reading past the setpoint is {past_k * 1e3:.2f} mK, within three times that scatter.")
        else:
            parts.append("The approach is from one side: no reading goes past the setpoint.")
    else:
        parts.append(f"The log ends before the readings stay within ±{tolerance_k * 1e3:g} mK of it (the stability "
                     "hold follows the log).")
    stable = run.scalar("stable_temperature_k")
    if math.isfinite(stable):
        parts.append(f"At the end of the stability hold the stage read {stable:.4f} K.")
    starts = [r.stage_temperature_k for r in later if math.isfinite(r.stage_temperature_k)]
    if starts:
        low_k, high_k = min(starts), max(starts)
        span = f"{low_k:.3f} K" if high_k - low_k < 5e-4 else f"{low_k:.3f}–{high_k:.3f} K"
        held = max(abs(low_k - setpoint_k), abs(high_k - setpoint_k)) <= max(tolerance_k, 0.1)
        parts.append(f"The {len(starts)} later run(s) started with the stage at {span} (their instrument snapshots)"
                     + ("." if held else ": not at this setpoint (a run's end puts the controller in its safe "
                                         "state, heater off, and the stage drifts back towards base) — the summary's "
                                         "conditions and design values take each run's own start temperature."))
    return " ".join(parts)
