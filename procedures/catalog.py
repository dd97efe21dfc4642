"""The characterization campaign: procedures in order, and how each result feeds the next.

    cooldown ─▶ iv_sweep ─▶ strength_duration ─▶ refractory ─▶ firing_rate ─▶ energy_per_spike
             ─▶ [synaptic_transfer ─▶ synaptic_energy] ─▶ efficiency

The synaptic procedures run only on a chip with a synapse (`campaign_for`): elsewhere there is
nothing for them to measure, and the efficiency then rests on an assumed synaptic energy, named so.

Hand-offs (result name → parameter of a later procedure):
* strength_duration "threshold_a" at the width closest to the pulsed procedures' width →
  refractory.threshold_a and energy_per_spike.threshold_a (their amplitudes are multiples of it);
* strength_duration "rheobase_a" → firing_rate current range (0.5× to 2× the rheobase: the
  DC onset lies near the rheobase);
* strength_duration "threshold_a" also → synaptic_transfer.threshold_a and
  synaptic_energy.threshold_a (the pre-neuron's threshold);
* synaptic_energy "synaptic_energy_j" and its interval → efficiency (the measured energy per
  synaptic event replaces the assumed ratio);
* cooldown "stable_temperature_k" → efficiency.chip_temperature_k;
* energy_per_spike "energy_per_spike_j" / "energy_per_spike_std_j" and the energy's interval
  (its bounds and level) → efficiency.
Values the campaign has not measured (yet, or NaN) are left to the procedures' defaults: the
chip file's design values, or what a procedure measures itself (a pulsed procedure without a
threshold searches for one). Only the hand-offs in REQUIRED_HAND_OFFS have no such stand-in (an
efficiency is that of a measured energy): a campaign refuses to run a procedure missing one
before it opens an instrument (`missing_hand_offs`), naming the procedure to run first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from contracts.files.chip import synapse_of
from contracts.procedure import Procedure
from contracts.records import Result
from procedures.cooldown import Cooldown
from procedures.efficiency import Efficiency
from procedures.energy_per_spike import EnergyPerSpike
from procedures.firing_rate import FiringRate
from procedures.iv_sweep import IvSweep
from procedures.refractory import Refractory
from procedures.strength_duration import StrengthDuration
from procedures.synaptic_energy import SynapticEnergy
from procedures.synaptic_transfer import SynapticTransfer

CAMPAIGN: tuple[type[Procedure], ...] = (
    Cooldown, IvSweep, StrengthDuration, Refractory, FiringRate, EnergyPerSpike, SynapticTransfer, SynapticEnergy,
    Efficiency)
#: Procedures that need a synapse on the chip (contracts.files.chip.synapse_of names its elements).
SYNAPTIC: frozenset[str] = frozenset({"synaptic_transfer", "synaptic_energy"})

#: What each procedure needs to have completed to be worth running. Everything needs a cold,
#: regulated stage; the pulsed procedures take their amplitudes from the measured thresholds;
#: the efficiency is computed from the measured energy per spike.
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "cooldown": (),
    "iv_sweep": ("cooldown",),
    "strength_duration": ("cooldown",),
    "refractory": ("cooldown", "strength_duration"),
    "firing_rate": ("cooldown", "strength_duration"),
    "energy_per_spike": ("cooldown", "strength_duration"),
    "synaptic_transfer": ("cooldown", "strength_duration"),
    "synaptic_energy": ("cooldown", "strength_duration"),
    "efficiency": ("energy_per_spike",),
}

#: Which parameter of a procedure is handed on from which earlier procedure (`hand_off` sets it).
HAND_OFFS: dict[str, dict[str, str]] = {
    "refractory": {"threshold_a": "strength_duration"},
    "firing_rate": {"current_min_a": "strength_duration", "current_max_a": "strength_duration"},
    "energy_per_spike": {"threshold_a": "strength_duration"},
    "synaptic_transfer": {"threshold_a": "strength_duration"},
    "synaptic_energy": {"threshold_a": "strength_duration"},
    "efficiency": {"synaptic_energy_j": "synaptic_energy", "synaptic_energy_low_j": "synaptic_energy",
                   "synaptic_energy_high_j": "synaptic_energy", "synaptic_energy_level": "synaptic_energy",
                   "synaptic_repeats_disagree": "synaptic_energy",
                   "energy_per_spike_j": "energy_per_spike", "energy_per_spike_std_j": "energy_per_spike",
                   "energy_per_spike_low_j": "energy_per_spike", "energy_per_spike_high_j": "energy_per_spike",
                   "energy_per_spike_level": "energy_per_spike", "chip_temperature_k": "cooldown"},
}

#: Hand-offs a procedure must be given (measured, or by an override): the efficiency is that of
#: a measured energy per spike, which no design value stands in for.
REQUIRED_HAND_OFFS: dict[str, tuple[str, ...]] = {
    "efficiency": ("energy_per_spike_j",),
}

Results = Mapping[str, Mapping[str, Result]]    # procedure name -> result name -> Result


def _scalar(results: Results, procedure: str, name: str) -> float | None:
    result = results.get(procedure, {}).get(name)
    if result is None:
        return None
    value = np.asarray(result.value)
    if value.ndim != 0 or value.dtype.kind not in "fi" or not math.isfinite(float(value)):
        return None
    return float(value)


def _threshold_at(results: Results, width_s: float) -> float | None:
    result = results.get("strength_duration", {}).get("threshold_a")
    if result is None or result.axis is None:
        return None
    widths = np.asarray(result.axis.values, dtype=float)
    thresholds = np.asarray(result.value, dtype=float)
    finite = np.isfinite(thresholds)
    if not finite.any():
        return None
    nearest = np.argmin(np.where(finite, np.abs(widths - width_s), np.inf))
    return float(thresholds[nearest])


def _interval_of(results: Results, procedure: str, name: str) -> dict[str, float]:
    """A measured scalar's interval as the parameters `<stem>_low_<u>`, `<stem>_high_<u>` and
    `<stem>_level` of the procedure it is handed to; none where it has no finite interval."""
    result = results.get(procedure, {}).get(name)
    interval = result.uncertainty if result is not None else None
    if interval is None or interval.low.ndim or not (np.isfinite(interval.low) and np.isfinite(interval.high)):
        return {}
    stem, _, units = name.rpartition("_")
    return {f"{stem}_low_{units}": float(interval.low), f"{stem}_high_{units}": float(interval.high),
            f"{stem}_level": interval.level}


def hand_off(procedure: type[Procedure], results: Results, overrides: Mapping[str, Any] | None = None) -> dict:
    """Parameters for `procedure` from the campaign's results so far (overrides win)."""
    values: dict[str, Any] = {}
    if procedure in (Refractory, EnergyPerSpike, SynapticTransfer, SynapticEnergy):
        width_s = dict(overrides or {}).get("width_s", procedure.Parameters().width_s)
        threshold = _threshold_at(results, width_s)
        if threshold is not None:
            values["threshold_a"] = threshold
    elif procedure is FiringRate:
        rheobase = _scalar(results, "strength_duration", "rheobase_a")
        if rheobase is not None and rheobase > 0:
            values.update(current_min_a=0.5 * rheobase, current_max_a=2.0 * rheobase)
    elif procedure is Efficiency:
        for name in ("energy_per_spike_j", "energy_per_spike_std_j"):
            value = _scalar(results, "energy_per_spike", name)
            if value is not None and value > 0:
                values[name] = value
        values.update(_interval_of(results, "energy_per_spike", "energy_per_spike_j"))
        synaptic = _scalar(results, "synaptic_energy", "synaptic_energy_j")
        if synaptic is not None and synaptic > 0:
            values["synaptic_energy_j"] = synaptic
            values.update(_interval_of(results, "synaptic_energy", "synaptic_energy_j"))
            disagree = _scalar(results, "synaptic_energy", "repeats_disagree")
            if disagree is not None:
                values["synaptic_repeats_disagree"] = int(disagree)
        temperature = _scalar(results, "cooldown", "stable_temperature_k")
        if temperature is not None and temperature > 0:
            values["chip_temperature_k"] = temperature
    values.update(overrides or {})
    return values


def handed_on(procedure: type[Procedure], results: Results, overrides: Mapping[str, Any] | None = None
              ) -> dict[str, str]:
    """parameter -> the procedure whose result `hand_off` took it from (overridden ones left out)."""
    given = hand_off(procedure, results, None)
    return {name: source for name, source in HAND_OFFS.get(procedure.name, {}).items()
            if name in given and name not in (overrides or {})}


def missing_hand_offs(procedure: type[Procedure], results: Results, overrides: Mapping[str, Any] | None = None
                      ) -> dict[str, str]:
    """Required parameter -> the procedure that must complete first, for each required hand-off
    that neither `results` nor `overrides` give."""
    given = hand_off(procedure, results, overrides)
    return {name: HAND_OFFS[procedure.name][name] for name in REQUIRED_HAND_OFFS.get(procedure.name, ())
            if name not in given}


def has_synapse(chip_design: Mapping[str, Any] | None) -> bool:
    """Whether the chip file has a synapse element (named syn_* or syn<N>_*)."""
    return any(isinstance(e, Mapping) and synapse_of(str(e.get("name", "")))
               for e in (chip_design or {}).get("elements") or ())


def campaign_for(chip_design: Mapping[str, Any] | None) -> tuple[type[Procedure], ...]:
    """The campaign for a chip: the synaptic procedures only where it has a synapse."""
    synapse = has_synapse(chip_design)
    return tuple(p for p in CAMPAIGN if synapse or p.name not in SYNAPTIC)


def campaign_plan(results_so_far: Results, overrides: Mapping[str, Mapping[str, Any]] | None = None,
                  chip_design: Mapping[str, Any] | None = None) -> Procedure | None:
    """The next procedure of the campaign, built with its hand-off parameters; None when done.

    `results_so_far` maps each finished procedure's name to its results (RunOutcome.results)."""
    for procedure in campaign_for(chip_design):
        if procedure.name not in results_so_far:
            return procedure(**hand_off(procedure, results_so_far, (overrides or {}).get(procedure.name)))
    return None
