"""Run a netlist in ngspice (batch mode, a private temp dir) and read its binary raw file.

`ngspice -b -r out.raw deck.cir` writes every node voltage and every branch current at the
simulator's own (non-uniform) time points; no interpolation happens here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from validation.netlist import Netlist
from validation.wire import WireParams

# A private, empty .spiceinit (and HOME), so a user's ~/.spiceinit cannot change the reference:
# the native port needs no compatibility mode, only standard B-source expressions.
_SPICEINIT = "* nwlab reference run: default ngspice behaviour\n"


class NgspiceError(RuntimeError):
    """ngspice is missing, failed, or produced no usable output."""


class NgspiceNotFound(NgspiceError):
    pass


def ngspice_path() -> str:
    exe = shutil.which("ngspice")
    if exe is None:
        raise NgspiceNotFound(
            "ngspice not installed: install the Debian package 'ngspice' (or run `.ci/env --ngspice`)"
        )
    return exe


@dataclass(frozen=True)
class SpiceResult:
    """Vectors of one transient run, keyed by ngspice's lower-case names."""

    time_s: np.ndarray
    vectors: dict[str, np.ndarray]
    wires: dict[str, WireParams]
    wall_time_s: float
    node_alias: dict[str, str] = field(default_factory=dict)
    element_alias: dict[str, str] = field(default_factory=dict)

    def _node(self, node: str) -> str:
        return self.node_alias.get(node, node).lower()

    def _element(self, name: str) -> str:
        return self.element_alias.get(name, name).lower()

    def voltage_v(self, node: str) -> np.ndarray:
        if node == "0":
            return np.zeros_like(self.time_s)
        return self._get(f"v({self._node(node)})")

    def branch_current_a(self, element: str) -> np.ndarray:
        """ngspice's branch current (for a V source: into its + terminal)."""
        return self._get(f"i({element.lower()})")

    def wire_current_a(self, wire: str) -> np.ndarray:
        """Nanowire current, positive from its first node to its second."""
        return self._get(f"i(vsen_{self._element(wire)})")

    def switching_current_a(self, wire: str) -> float:
        return self.wires[self._element(wire)].switching_current_a

    def hotspot_ohm(self, wire: str) -> np.ndarray:
        """Hotspot resistance, zero while superconducting (the integrator's state when normal)."""
        r = self._get(f"v({self._element(wire)}_r)")
        return np.where(self.normal_state(wire), np.maximum(r, 0.0), 0.0)

    def normal_state(self, wire: str) -> np.ndarray:
        return self._get(f"v({self._element(wire)}_st)") > 0.5

    def _get(self, key: str) -> np.ndarray:
        try:
            return self.vectors[key]
        except KeyError:
            raise KeyError(f"no vector {key!r}; have {sorted(self.vectors)}") from None


def _without_resource_report(text: str) -> list[str]:
    noise = ("dram", "pages", "program size", "stack =", "elapsed time", "analysis time")
    return [ln for ln in text.strip().splitlines() if ln.strip() and not any(k in ln.lower() for k in noise)]


def read_raw(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Parse a real-valued binary raw file (one plot) into time and named vectors."""
    blob = path.read_bytes()
    marker = blob.find(b"Binary:\n")
    if marker < 0:
        raise NgspiceError(f"{path.name}: not a binary raw file")
    header = blob[:marker].decode("ascii", "replace").splitlines()
    fields = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in header if ":" in line}
    if "complex" in fields.get("Flags", ""):
        raise NgspiceError(f"{path.name}: complex data (not a transient)")
    n_vars, n_points = int(fields["No. Variables"]), int(fields["No. Points"])
    start = header.index("Variables:") + 1
    names = [line.split()[1].lower() for line in header[start : start + n_vars]]
    data = np.frombuffer(blob, dtype="<f8", count=n_vars * n_points, offset=marker + 8)
    data = data.reshape(n_points, n_vars)
    vectors = {name: data[:, j].copy() for j, name in enumerate(names)}
    return vectors.pop("time"), vectors


def run(netlist: Netlist, *, timeout_s: float = 120.0, keep_dir: Path | None = None) -> SpiceResult:
    """Simulate `netlist` in ngspice; raise NgspiceError with ngspice's own messages on failure."""
    exe = ngspice_path()
    with tempfile.TemporaryDirectory(prefix="nwlab-ngspice-") as tmp:
        work = keep_dir if keep_dir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / ".spiceinit").write_text(_SPICEINIT)
        (work / "deck.cir").write_text(netlist.text())
        env = {**os.environ, "HOME": str(work), "SPICE_ASCIIRAWFILE": "0"}
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                [exe, "-b", "-r", "out.raw", "deck.cir"],
                cwd=work, env=env, capture_output=True, text=True, timeout=timeout_s,
            )
        except subprocess.TimeoutExpired as exc:
            raise NgspiceError(f"ngspice timed out after {timeout_s} s on {netlist.title!r}") from exc
        wall = time.perf_counter() - start
        errors = [ln for ln in (proc.stdout + "\n" + proc.stderr).splitlines()
                  if ln.lower().lstrip().startswith(("error", "fatal")) or "doanalyses" in ln.lower()]
        raw = work / "out.raw"
        if proc.returncode != 0 or errors or not raw.exists():
            raise NgspiceError(
                f"ngspice failed on {netlist.title!r} (exit {proc.returncode}):\n"
                + "\n".join(errors or [])
                + f"\n--- stderr ---\n{proc.stderr.strip()}\n--- stdout (tail) ---\n"
                + "\n".join(_without_resource_report(proc.stdout)[-15:])
            )
        time_s, vectors = read_raw(raw)
    if time_s.size < 2 or time_s[-1] < 0.999 * netlist.stop_s:
        raise NgspiceError(f"ngspice stopped early on {netlist.title!r} at t={time_s[-1]:.4g} s")
    return SpiceResult(time_s=time_s, vectors=vectors, wires=dict(netlist.wires), wall_time_s=wall,
                       node_alias=dict(netlist.node_alias), element_alias=dict(netlist.element_alias))
