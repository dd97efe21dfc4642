"""The emulator's true energies of an energy_per_spike run, capture by capture (a test helper).

`record_captures(world)` (validation/capture_log.py) makes the emulated bench keep the ground truth of every acquisition
(sim_backend/bench/acquisition.py `CaptureTruth`: the noise-free transient the scope's record
was made from, with the solver's energy accounting, sim_backend/physics/results.py
`EnergyReport`). For each capture:

* its true class: the main wire's (wm) and the control wire's (wc) switch events, through the
  same rule the procedure applies to its traces (analysis.spikes.classify_spiking_capture);
* its true energy: what the sources delivered minus what the chip stored more at the end than
  at the start (the energy dissipated over the simulated window); per port, the input's
  delivered energy and the rest (bias port and the change in stored energy).

The true baseline scales the reference captures' terms as the procedure does ((A/A0)^2 for the
input, A/A0 for the rest); a capture's true energy above the baseline, per spike, averaged over
the captures the truth calls single spikes, is the truth `energy_per_spike_j` estimates in that
same run, from the same chip states (the loop's circulating current changes from one capture
to the next, so a truth from one fixed state differs by a few percent: see
validation/ground_truth.py TruthChip.energy_per_spike_j for that noise-free, one-state figure).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from procedures.analysis.spikes import classify_spiking_capture

MAIN_WIRE, CONTROL_WIRE = "wm", "wc"


def switches(capture, wire: str) -> int:
    return sum(e.element == wire and e.kind == "switch" for e in capture.chip.events)


def true_class(capture) -> int:
    return classify_spiking_capture(switches(capture, MAIN_WIRE), switches(capture, CONTROL_WIRE))


def dissipated_j(capture) -> float:
    """Delivered by every source minus the increase of stored energy over the window."""
    energy = capture.chip.energy
    return sum(energy.delivered_j.values()) - (energy.stored_end_j - energy.stored_start_j)


@dataclass(frozen=True)
class TrueEnergies:
    classes: np.ndarray          # per spiking capture
    spikes: np.ndarray           # main-wire switches per spiking capture
    energy_j: np.ndarray         # above the true baseline, per capture
    baseline_j: float

    def mean_per_spike_j(self, capture_class: int) -> float:
        keep = self.classes == capture_class
        return float(np.mean(self.energy_j[keep] / self.spikes[keep])) if keep.any() else float("nan")


def delivered_j(capture) -> float:
    """Delivered by every source over the window: what ∫V·I dt at the ports measures."""
    return float(sum(capture.chip.energy.delivered_j.values()))


def port_delivered_j(captures: list, source: str) -> np.ndarray:
    """What one port's source delivered in each capture (ChipUnderTest.port_sources["input"] or
    ["bias"]): the truth of that port's ∫V·I dt, capture by capture."""
    return np.array([float(c.chip.energy.delivered_j[source]) for c in captures])


def true_energies(references: list, spiking: list, input_source: str, ratio: float,
                  accounting=dissipated_j) -> TrueEnergies:
    """True class and energy above the true baseline of each spiking capture; `ratio` is the
    spiking amplitude over the reference amplitude, `input_source` the input port's source
    element (ChipUnderTest.port_sources["input"]). `accounting`: dissipated_j (the physics:
    what the chip turned into heat) or delivered_j (what the ports' ∫V·I dt measures: it differs
    by the change in stored energy, which a control-wire afterpulse releases, ~0.7 aJ on the
    default neuron, and each single spike adds to by ~0.05-0.1 aJ)."""
    def split(capture) -> tuple[float, float]:
        delivered_input_j = float(capture.chip.energy.delivered_j[input_source])
        return delivered_input_j, accounting(capture) - delivered_input_j

    parts = np.array([split(c) for c in references])
    baseline_j = ratio**2 * parts[:, 0].mean() + ratio * parts[:, 1].mean()
    return TrueEnergies(np.array([true_class(c) for c in spiking]),
                        np.array([switches(c, MAIN_WIRE) for c in spiking]),
                        np.array([accounting(c) for c in spiking]) - baseline_j, float(baseline_j))
