"""`nwlab chip …`: simulate or check a chip file standalone (docs/chip-files.md).

The application's one use of the emulator's chip reader and solver, outside any bench: the
import-linter contract "Only the command line reaches into the emulator" names each module.
They are imported by the commands that use them: `nwlab` builds every command's parser each time
it starts, and `nwlab archive ls` has no use for the solver.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from contracts.units import format_si

CHIP_DIR = Path(__file__).resolve().parents[2] / "stations" / "chips"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `nwlab chip` to the parser."""
    chip = subparsers.add_parser("chip", help="simulate or check a chip file")
    commands = chip.add_subparsers(dest="chip_command", required=True, metavar="CHIP_COMMAND")
    sim = commands.add_parser("simulate", help="transient simulation of a chip; writes traces and a JSON summary")
    sim.add_argument("chip", help="chip file, or the name of a shipped chip (e.g. default-neuron)")
    sim.add_argument("--stop-s", type=float, required=True, help="end time of the simulation in s")
    sim.add_argument("--input", action="append", default=[], metavar="PORT=SPEC",
                     help="drive a port: PORT=pulse:amplitude_a=…,width_s=…,delay_s=…,rise_s=…[,fall_s=…]"
                          " or PORT=dc:value=…; repeat to add pulses on one port")
    sim.add_argument("--temperature-k", type=float, default=None, help="default: the chip file's")
    sim.add_argument("--seed", type=int, default=0, help="seed of the switching-threshold draws")
    sim.add_argument("--sample-interval-s", type=float, default=1e-12, help="output grid (default 1 ps)")
    sim.add_argument("--no-bias-state", action="store_true",
                     help="start from zero currents instead of the biased DC operating point")
    sim.add_argument("--out", required=True, help="result.h5 or result.csv (a .json summary goes next to it)")
    sim.set_defaults(handler=simulate_command)
    check = commands.add_parser("check", help="validate a chip file and print its derived constants")
    check.add_argument("chip", help="chip file, or the name of a shipped chip")
    check.set_defaults(handler=check_command)


def resolve_chip(name: str) -> Path:
    path = Path(name)
    if path.exists() or path.suffix:
        return path
    return CHIP_DIR / f"{name}.yaml"


def parse_input(spec: str):
    """'PORT=pulse:amplitude_a=…,…' -> (port, PiecewiseLinear)."""
    from sim_backend.physics.waveform import PiecewiseLinear

    port, sep, rest = spec.partition("=")
    kind, sep2, args = rest.partition(":")
    if not (sep and sep2 and port):
        raise ValueError(f"--input {spec!r}: expected PORT=pulse:key=value,… or PORT=dc:value=…")
    try:
        values = {k.strip(): float(v) for k, v in (item.split("=", 1) for item in args.split(",") if item)}
    except ValueError:
        raise ValueError(f"--input {spec!r}: arguments must be key=number pairs") from None
    if kind == "dc":
        if set(values) != {"value"}:
            raise ValueError(f"--input {spec!r}: dc takes exactly value=…")
        return port, PiecewiseLinear.constant(values["value"])
    if kind == "pulse":
        allowed = {"amplitude_a", "width_s", "delay_s", "rise_s", "fall_s"}
        if not {"amplitude_a", "width_s", "delay_s", "rise_s"} <= set(values) <= allowed:
            raise ValueError(f"--input {spec!r}: pulse needs amplitude_a, width_s, delay_s, rise_s (fall_s optional)")
        return port, PiecewiseLinear.pulse(values["amplitude_a"], delay_s=values["delay_s"],
                                           width_s=values["width_s"], rise_s=values["rise_s"],
                                           fall_s=values.get("fall_s"))
    raise ValueError(f"--input {spec!r}: unknown waveform {kind!r} (pulse, dc)")


def sample_count(args: argparse.Namespace, chip) -> int:
    """Samples of the output grid, checked before anything is allocated: the time flags must be
    positive and finite, and the traces fit in MAX_TRACE_BYTES (ValueError with the estimate)."""
    from sim_backend.physics.transient import MAX_TRACE_BYTES, format_bytes, trace_bytes

    for flag, value in (("--stop-s", args.stop_s), ("--sample-interval-s", args.sample_interval_s)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{flag} {value!r}: must be a positive number of seconds")
    if args.sample_interval_s > args.stop_s:
        raise ValueError(f"--sample-interval-s {args.sample_interval_s!r}: longer than --stop-s {args.stop_s!r}")
    n = int(round(args.stop_s / args.sample_interval_s)) + 1
    needed = trace_bytes(chip.circuit, n, chip.temperature_k)
    if needed > MAX_TRACE_BYTES:
        per_sample = needed / n
        coarsest = args.stop_s / max(MAX_TRACE_BYTES / per_sample - 1, 1)
        raise ValueError(f"--stop-s {args.stop_s:g} at --sample-interval-s {args.sample_interval_s:g}: {n} samples "
                         f"x {per_sample:.0f} bytes = {format_bytes(needed)} of traces, above the "
                         f"{format_bytes(MAX_TRACE_BYTES)} limit; use --sample-interval-s {coarsest:.3g} or more, "
                         "or a shorter --stop-s")
    return n


def simulate_command(args: argparse.Namespace) -> int:
    from lab.app.chip_output import summary, write_csv, write_json
    from lab.archive.chip_traces import write_chip_traces
    from sim_backend.chip.build import ChipFileError, load_chip
    from sim_backend.physics.dc import dc_state
    from sim_backend.physics.transient import simulate

    try:
        chip = load_chip(resolve_chip(args.chip))
        drives = {}
        for spec in args.input:
            port, wave = parse_input(spec)
            if port not in chip.ports:
                raise ValueError(f"--input {spec!r}: chip {chip.name!r} has no port {port!r} "
                                 f"(ports: {', '.join(chip.ports)})")
            source = chip.ports[port]
            drives[source] = drives[source] + wave if source in drives else wave
        out = Path(args.out)
        if out.suffix not in (".h5", ".csv"):
            raise ValueError(f"--out {out}: must end in .h5 or .csv")
        temperature_k = chip.temperature_k if args.temperature_k is None else args.temperature_k
        if not (math.isfinite(temperature_k) and temperature_k > 0):
            raise ValueError(f"--temperature-k {temperature_k!r}: must be a positive number of kelvin")
        n = sample_count(args, chip)
    except (ChipFileError, ValueError, OSError) as exc:
        print(f"nwlab chip simulate: {exc}", file=sys.stderr)
        return 2
    try:
        initial = None if args.no_bias_state else dc_state(chip.circuit, temperature_k=temperature_k)
        result = simulate(chip.circuit, args.stop_s, drives=drives, temperature_k=temperature_k,
                          rng=np.random.default_rng(args.seed), initial=initial,
                          sample_times_s=np.linspace(0.0, args.stop_s, n))
    except (ValueError, RuntimeError) as exc:   # the network or the solver, for this chip
        print(f"nwlab chip simulate: {chip.path}: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"nwlab chip simulate: {chip.path}: out of memory during the simulation", file=sys.stderr)
        return 2
    try:
        if out.suffix == ".h5":
            write_chip_traces(out, result.time_s, result.node_voltage_v)
        else:
            write_csv(out, result.time_s, result.node_voltage_v)
        meta = {"chip": chip.name, "chip_file": str(chip.path), "temperature_k": temperature_k,
                "seed": args.seed, "stop_s": args.stop_s, "inputs": args.input}
        json_path = write_json(out.with_suffix(".json"), result, meta)
    except OSError as exc:
        print(f"nwlab chip simulate: --out {out}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(summary(chip.name, result, out, json_path))
    return 0


def check_command(args: argparse.Namespace) -> int:
    from sim_backend.chip.build import ChipFileError, load_chip

    try:
        chip = load_chip(resolve_chip(args.chip))
        text = describe_chip(chip)
    except (ChipFileError, ValueError, OSError) as exc:
        print(f"nwlab chip check: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


def describe_chip(chip) -> str:
    """What `nwlab chip check` prints: each element with its derived constants, ports, outputs
    and the DC bias state."""
    from sim_backend.physics import nanowire as nw
    from sim_backend.physics.circuit import CurrentSource, Inductor, Nanowire, Resistor, VoltageSource
    from sim_backend.physics.dc import dc_state

    t = chip.temperature_k
    lines = [f"chip {chip.name} ({chip.path}): OK", f"  temperature {t:g} K",
             f"  nodes: {', '.join(chip.circuit.node_names)}; ground 0"]
    for e in chip.circuit.elements:
        ends = f"{e.node_pos} -> {e.node_neg}"
        if isinstance(e, Nanowire):
            p = e.params
            isw = nw.switching_current_a(p, t)
            lines += [
                f"  nanowire {e.name} ({ends}): L0 {format_si(p.inductance_h, 'H')}"
                f" ({'nonlinear' if p.nonlinear_inductance else 'linear'}), retrap {p.retrap}",
                f"    I_sw({t:g} K) {format_si(isw, 'A', 6)}, I_hs {format_si(nw.hotspot_current_a(p, t), 'A', 6)},"
                f" psi {nw.stekly_parameter(p, t):.3f}, sigma {format_si(p.sigma_isw_a, 'A')}",
                f"    L_sq {format_si(nw.inductance_per_square_h(p), 'H')}, {nw.squares(p):.1f} squares,"
                f" length {nw.length_m(p) * 1e6:.2f} µm, R_n {format_si(nw.normal_resistance_ohm(p), 'ohm', 5)}",
                f"    v0 {nw.characteristic_velocity_m_per_s(p):.2f} m/s, dR/dt at I_sw"
                f" {nw.growth_rate_ohm_per_s(p, isw, t) * 1e-12:.3f} Ω/ps,"
                f" stored energy at I_sw {format_si(nw.stored_energy_j(p, isw), 'J')}",
            ]
        elif isinstance(e, Inductor):
            lines.append(f"  inductor {e.name} ({ends}): {format_si(e.inductance_h, 'H')}")
        elif isinstance(e, Resistor):
            lines.append(f"  resistor {e.name} ({ends}): {format_si(e.resistance_ohm, 'ohm')}")
        elif isinstance(e, CurrentSource):
            lines.append(f"  current source {e.name} ({ends}): {format_si(e.current_a, 'A')} DC")
        elif isinstance(e, VoltageSource):
            lines.append(f"  voltage source {e.name} ({ends}): {format_si(e.voltage_v, 'V')} DC")
    lines.append("  ports: " + ", ".join(f"{k} -> {v}" for k, v in chip.ports.items()))
    lines.append("  outputs: " + ", ".join(f"{k} -> node {v}" for k, v in chip.outputs.items()))
    try:
        state = dc_state(chip.circuit, temperature_k=t)
        lines.append("  DC bias state: " + ", ".join(
            f"{k} {format_si(v, 'A')}" for k, v in state.branch_current_a.items()))
    except ValueError as exc:
        lines.append(f"  DC bias state: none ({exc})")
    return "\n".join(lines)
