"""Shared pieces of the reliability suite: station copies, procedure catalogue, value pools."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EMULATED = ROOT / "stations" / "emulated.yaml"
CHIPS = ROOT / "stations" / "chips"
DEFAULT_CHIP = CHIPS / "default-neuron.yaml"


def emulated_tree(station: Path = EMULATED) -> dict:
    """The parsed emulated station (or another shipped one), its chip path made absolute (copies
    can live anywhere)."""
    tree = yaml.safe_load(station.read_text())
    tree["chip"] = str((station.parent / tree["chip"]).resolve())
    return tree


def write_station(tmp_dir: Path, tree: dict, name: str = "station.yaml") -> Path:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    path = tmp_dir / name
    path.write_text(yaml.safe_dump(tree, sort_keys=False, allow_unicode=True))
    return path


def key_paths(node: Any, prefix: str = "") -> list[tuple[str, tuple]]:
    """Every (dotted key path, access path) in a YAML tree, lists as [i] like the loader says."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            found.append((dotted, (key,)))
            found += [(d, (key,) + a) for d, a in key_paths(value, dotted)]
    elif isinstance(node, list):
        for index, value in enumerate(node):
            dotted = f"{prefix}[{index}]"
            found.append((dotted, (index,)))
            found += [(d, (index,) + a) for d, a in key_paths(value, dotted)]
    return found


def get_at(tree: Any, access: tuple) -> Any:
    for step in access:
        tree = tree[step]
    return tree


def set_at(tree: Any, access: tuple, value: Any) -> Any:
    tree = copy.deepcopy(tree)
    get_at(tree, access[:-1])[access[-1]] = value
    return tree


def delete_at(tree: Any, access: tuple) -> Any:
    tree = copy.deepcopy(tree)
    del get_at(tree, access[:-1])[access[-1]]
    return tree


#: Values of the wrong kind or out of any physical range, for any field.
BAD_NUMBERS = [-1.0, -1e-6, 0.0, -0.0, math.nan, math.inf, -math.inf, 1e308, -1e308, 1e-320, 10**30, -(10**30),
               -1, 0, 1]
BAD_OTHERS = [None, True, False, "", " ", "1e-6", "abc", "NaN", [], [1, 2], {}, {"value": 1}, "μ", "\u202e"]


# -- emulated benches with one model per role ---------------------------------------------------

#: Station instrument key per role in stations/emulated.yaml.
ROLE_KEYS = {"temperature_controller": "cryostat", "pulse_generator": "pulser", "oscilloscope": "scope",
             "bias_source": "bias"}


def bench_for_model(tmp_dir: Path, model: str, role: str):
    """A real bench built from a tmp copy of the emulated station whose `role` instrument is
    the emulator model `model` (the other instruments stay as shipped). Lab time runs at wall
    speed, so fuzzing does not turn into hours of thermal simulation."""
    from sim_backend.clock import LabClock
    from sim_backend.emulator import build_bench

    tree = emulated_tree()
    key = ROLE_KEYS[role]
    emulator = dict(tree["instruments"][key].get("emulator") or {})
    emulator["model"] = model
    if model == "lakeshore_372":
        emulator.pop("stage", None)          # the 372 regulates a dilution stage by default
        emulator.pop("initial_temperature_k", None)
    tree["instruments"][key]["emulator"] = emulator
    path = write_station(tmp_dir, tree, f"station-{model}.yaml")
    return build_bench(path, clock=LabClock(1.0)), key
