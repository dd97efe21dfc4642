"""Settles that start on a limit cycle: simulated a few times per change, then drawn again.

A chip on a limit cycle under DC drive (a port in relaxation oscillation, or a wire latched
resistive) remembers nothing but that drive: which cycle it is on is set by the DC bias, the DC
input levels, the temperature and the latched wires, and only its phase and the thresholds
drawn along it are left to chance. Where a change of drive leads from such a state (the new
cycle, a retrap, flux left in the loop) is therefore one distribution per (drive before, drive
after). The first OUTCOMES_KEPT settles of each change are simulated in full and kept; later
ones draw one of those, so the readings still vary as the simulated ones did and a change that
sometimes retraps still does. A bias sweep through resistive levels revisits the same changes
(iv_sweep's windows lie on one grid), so it simulates each a few times, not each time.

A state that is not on a limit cycle (superconducting with flux trapped in a loop, or the
transient after a pulse) carries its history: settles from it are always simulated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sim_backend.physics.results import TransientResult

#: Simulated outcomes kept per change of drive. They are what later draws choose from: enough to
#: carry the spread of readings and the odds of a retrap (in steps of 1/8), few enough that a
#: sweep through a few hundred distinct changes simulates each only this often.
OUTCOMES_KEPT = 8
#: The temperature's share of a drive, rounded to this (K): 1 mK moves a default-neuron wire's
#: switching current by 1.7 nA at 3.2 K, 3.5 % of its 50 nA spread.
TEMPERATURE_RESOLUTION_K = 1e-3
#: Changes of drive remembered at most (a sweep visits a few hundred).
CHANGES_MAX = 4096
#: Drives known to hold a limit cycle, remembered at most.
CYCLE_DRIVES_MAX = 4096

Drive = tuple   # (DC bias per port, DC input settings, temperature, latched wires)


def drive_of(bias_a: Mapping[str, float], dc_inputs: tuple | None, temperature_k: float,
             latched: frozenset[str]) -> Drive:
    """What sets a limit cycle: the DC drive, the temperature and the wires held resistive."""
    return (tuple(sorted(bias_a.items())), dc_inputs,
            round(temperature_k / TEMPERATURE_RESOLUTION_K), tuple(sorted(latched)))


def ends_on_cycle(result: TransientResult, reading_s: float, latched: frozenset[str]) -> bool:
    """The settle ended on a limit cycle: a wire latched, or switching still in its last reading_s."""
    if latched:
        return True
    end_s = float(result.time_s[-1])
    return any(event.time_s >= end_s - reading_s for event in result.events)


@dataclass(frozen=True)
class SteadyOutcome:
    """A simulated settle and the wires still latched after it (an unbiased end frees them)."""

    result: TransientResult
    latched: frozenset[str]


class SteadyOutcomes:
    """Outcomes of settles from a limit cycle, per (drive before, drive after)."""

    def __init__(self) -> None:
        self._kept: dict[tuple[Drive, Drive], list[SteadyOutcome]] = {}

    def drawn(self, change: tuple[Drive, Drive] | None, rng: np.random.Generator) -> SteadyOutcome | None:
        """One of the kept outcomes of `change`, at random, once OUTCOMES_KEPT are kept; else None."""
        kept = self._kept.get(change) if change is not None else None
        if kept is None or len(kept) < OUTCOMES_KEPT:
            return None
        return kept[int(rng.integers(len(kept)))]

    def keep(self, change: tuple[Drive, Drive] | None, outcome: SteadyOutcome) -> None:
        if change is None:
            return
        if change not in self._kept and len(self._kept) >= CHANGES_MAX:
            self._kept.clear()
        self._kept.setdefault(change, []).append(outcome)


class CycleDrives:
    """Drives a settle found to hold a limit cycle (World's run-out of a settle still switching).

    A port driven harder than one that holds a cycle holds one too: above its retrapping
    current the relaxation oscillation only runs faster. So for a drive through one bias port,
    the lowest |current| found to hold a cycle (per sign and the rest of the drive: inputs,
    temperature, latched wires) answers for every higher one; other drives are kept as they are.
    """

    def __init__(self) -> None:
        self._lowest_a: dict[tuple, float] = {}
        self._exact: set[Drive] = set()

    @staticmethod
    def _one_port(drive: Drive) -> tuple[tuple, float] | None:
        bias = drive[0]
        if len(bias) != 1 or bias[0][1] == 0.0:
            return None
        port, current_a = bias[0]
        return (port, current_a > 0.0, *drive[1:]), abs(current_a)

    def holds_cycle(self, drive: Drive) -> bool:
        one = self._one_port(drive)
        if one is None:
            return drive in self._exact
        lowest_a = self._lowest_a.get(one[0])
        return lowest_a is not None and one[1] >= lowest_a

    def add(self, drive: Drive) -> None:
        if len(self._lowest_a) + len(self._exact) >= CYCLE_DRIVES_MAX:
            self._lowest_a.clear()
            self._exact.clear()
        one = self._one_port(drive)
        if one is None:
            self._exact.add(drive)
        else:
            self._lowest_a[one[0]] = min(one[1], self._lowest_a.get(one[0], math.inf))
