"""The slow path of a design sweep (`measure: procedures` in its spec): each point measured by
the procedures themselves, on a fresh emulated station whose chip is the point's chip file —
real drivers, the emulator, the runner, an archive per run in DIR/runs/point-NNNNNN/ (the same
format as any run) — instead of the direct simulation of the fast path (sweeps/fast_path.py).

The station is the spec's `station:` file with the point's chip, the point's seed as the
emulator's seed and an in-process emulated bench of its own (every instrument's `visalib`);
a swept `temperature` is reached first by the cooldown procedure, as a campaign would. The
procedures run with their default parameters; the thresholds' widths are the spec's. Which
procedure gives which metric: SOURCES.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from contracts.files.station import StationError, read_station
from contracts.files.yaml12 import load_yaml
from lab.execution.instruments import open_instruments
from lab.execution.runner import Runner
from procedures.cooldown import Cooldown
from procedures.energy_per_spike import EnergyPerSpike
from procedures.firing_rate import FiringRate
from procedures.refractory import Refractory
from procedures.strength_duration import StrengthDuration
from sweeps.spec import SweepSpec, chip_variant, point_seed

#: metric -> (procedure, its result)
SOURCES = {
    "threshold_a": ("strength_duration", "threshold_a"),
    "rheobase_a": ("strength_duration", "rheobase_a"),
    "chronaxie_s": ("strength_duration", "chronaxie_s"),
    "energy_per_spike_j": ("energy_per_spike", "energy_per_spike_j"),
    "refractory_s": ("refractory", "refractory_period_s"),
    "fi_onset_a": ("firing_rate", "onset_current_a"),
    "fi_gain_hz_per_a": ("firing_rate", "firing_gain_hz_per_a"),
}
#: Stage temperature reached before the measurements, when the sweep varies it.
COOLDOWN = {"log_duration_s": 60.0, "hold_s": 20.0, "timeout_s": 1800.0}


def point_directory(runs_dir: Path, index: int) -> Path:
    return Path(runs_dir) / f"point-{index:06d}"


def _station_file(spec: SweepSpec, chip_path: Path, seed: int, directory: Path) -> Path:
    tree = load_yaml(spec.station_path, StationError)
    tree["chip"] = str(chip_path)
    tree.setdefault("emulator", {})["seed"] = seed
    path = directory / "station.yaml"
    library = f"{path}#{uuid.uuid4().hex}"      # a bench of its own, whoever else runs in this process
    for instrument in tree["instruments"].values():
        instrument["visalib"] = f"{library}@nwlab"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def evaluate_point_slow(spec: SweepSpec, index: int, values: Sequence[float], *, runs_dir: str) -> dict[str, Any]:
    """One point through the procedures: the metrics the spec asks for, or the error that stopped it."""
    seed = point_seed(spec.seed, index)
    started = time.perf_counter()
    out: dict[str, Any] = {"point": int(index), "seed": seed, "values": tuple(float(v) for v in values), "error": ""}
    instruments = None
    # The drivers' opening chatter is not the sweep's to show; the caller's level comes back after
    # the point (a notebook running a sweep in process keeps its own logging).
    qcodes_log = logging.getLogger("qcodes")
    qcodes_level = qcodes_log.level
    try:
        directory = point_directory(Path(runs_dir), index)
        directory.mkdir(parents=True, exist_ok=True)
        tree = chip_variant(spec, values)
        chip_path = directory / "chip.yaml"
        chip_path.write_text(yaml.safe_dump(tree, sort_keys=False))
        station = read_station(_station_file(spec, chip_path, seed, directory))
        qcodes_log.setLevel(logging.ERROR)
        instruments = open_instruments(station, name_prefix=f"sweep{index}_{uuid.uuid4().hex[:6]}_")
        runner = Runner(station, instruments.roles, archive_dir=directory, snapshot=instruments.snapshot,
                        chip_design=tree, show_progress=False)

        def run(procedure) -> dict:
            outcome = runner.run(procedure)
            if outcome.exit_status != "completed":
                raise RuntimeError(f"{procedure.name} {outcome.exit_status}: {outcome.message}")
            return outcome.results

        temperature = [v for p, v in zip(spec.parameters, values) if p.key == "temperature"]
        if temperature:
            run(Cooldown(setpoint_k=temperature[0], **COOLDOWN))
        found: dict[str, dict] = {}
        wanted = {SOURCES[m][0] for m in spec.metrics}
        if wanted & {"strength_duration", "energy_per_spike", "refractory"}:
            found["strength_duration"] = run(StrengthDuration(widths_s=tuple(spec.stimulus["widths_s"])))
            threshold_a = float(np.ravel(found["strength_duration"]["threshold_a"].value)[0])
            if "energy_per_spike" in wanted:
                found["energy_per_spike"] = run(EnergyPerSpike(threshold_a=threshold_a))
            if "refractory" in wanted:
                found["refractory"] = run(Refractory(threshold_a=threshold_a))
        if "firing_rate" in wanted:
            found["firing_rate"] = run(FiringRate())
        for metric in spec.metrics:
            procedure, name = SOURCES[metric]
            result = found[procedure].get(name)
            value = np.nan if result is None else result.value
            out[metric] = [float(v) for v in np.ravel(value)] if metric == "threshold_a" else float(value)
            bounds = (f"{metric}_low", f"{metric}_high")
            if metric in ("threshold_a", "refractory_s", "fi_onset_a") and result is not None \
                    and result.uncertainty is not None:
                low, high = np.ravel(result.uncertainty.low), np.ravel(result.uncertainty.high)
                out[bounds[0]] = [float(v) for v in low] if metric == "threshold_a" else float(low[0])
                out[bounds[1]] = [float(v) for v in high] if metric == "threshold_a" else float(high[0])
    except Exception as exc:  # noqa: BLE001 — a point's failure is recorded, never fatal to the sweep
        last = traceback.extract_tb(exc.__traceback__)[-1]
        out["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())} ({Path(last.filename).name}:{last.lineno})"
    finally:
        if instruments is not None:
            instruments.close()
        qcodes_log.setLevel(qcodes_level)
    out["elapsed_s"] = time.perf_counter() - started
    return out
