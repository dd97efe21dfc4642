"""Acquisitions per second, end to end: pyvisa -> transport -> bench -> physics -> binary block ->
parsed trace, for a 2-channel, 10,000-point Infiniium trace (WORD, #0 blocks), on the emulated
station (bias on, generator pulsing at 1 kHz, trigger on the input monitor).

Rows: the in-process backend; the TCP server over pyvisa-py; and, as references measured in
the same run, a plain loopback TCP server that answers the same queries with the same bytes
(no bench, no physics) and pyvisa-sim serving one query whose reply has the byte size of one
acquisition's data transfer (the two channels' blocks). pyvisa-sim serves static strings, so its
reply is a long ASCII string of that size, not binary data; it is timed through
`pyvisa.ResourceManager("<tmp>/scope.yaml@sim")`. Bytes/s compare the two: pyvisa-sim's reply
bytes per second against the in-process path's block bytes per acquisition x acquisitions/s.
A profile splits the in-process time into physics (chip simulation) and the rest. Over TCP and
from the raw server, the transfer of the held record alone (both channels' preamble and block,
no new acquisition) is timed too: the transport's own rate, without the chip's simulation.

Targets: >= 1000 acquisitions/s in-process; over TCP >= 0.5 of the raw loopback server's
acquisitions/s; >= 50x pyvisa-sim's bytes/s.

    .ci/env python benchmarks/acquisition_throughput.py [--seconds 3]

Prints a table and one JSON line {"benchmark": "acquisition_throughput", ...}.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pyvisa
import yaml

ROOT = Path(__file__).resolve().parents[1]
POINTS = 10_000
TARGET_IN_PROCESS_PER_S = 1000.0   # acquisitions of 2 x 10,000 points a second, in-process
TARGET_TCP_VS_RAW = 0.5            # over TCP, of a raw loopback server serving the same bytes
SETUP = (":SYST:HEAD OFF", ":WAV:FORM WORD", ":WAV:BYT LSBF", ":WAV:STR ON", ":TIM:RANG 500E-9",
         ":TIM:REF LEFT", ":TIM:POS -50E-9", ":ACQ:SRAT 20E9", f":ACQ:POIN {POINTS}", ":CHAN1:RANG 0.4",
         ":CHAN1:OFFS 0.1", ":CHAN2:DISP ON", ":CHAN2:RANG 0.4", ":CHAN2:OFFS 0.1", ":TRIG:EDGE:SOUR CHAN2",
         ":TRIG:LEV CHAN2,0.06")


def station_file(directory: Path) -> Path:
    station = yaml.safe_load((ROOT / "stations" / "emulated.yaml").read_text())
    station["chip"] = str(ROOT / "stations" / "chips" / "default-neuron.yaml")
    path = directory / "station.yaml"
    path.write_text(yaml.safe_dump(station))
    return path


def prepare(bench) -> None:
    """Bias on, a 1.2 V, 2 ns pulse every 1 ms (60 uA at the chip: above threshold)."""
    world = bench.world
    bias = world.panels["bias"]
    bias.source_function, bias.current_level_a, bias.output_enabled = "current", 22e-6, True
    pulse = world.panels["pulser"].channels[1]
    pulse.function, pulse.amplitude_vpp, pulse.offset_v, pulse.frequency_hz = "PULS", 1.2, 0.6, 1e3
    pulse.pulse_width_s, pulse.lead_edge_s, pulse.trail_edge_s = 2e-9, 0.2e-9, 0.2e-9
    pulse.running_since_s, pulse.output_enabled = world.now_s(), True


def acquire(scope) -> list[np.ndarray]:
    """What the stock driver does per trace: digitize, then each channel's #0 WORD block."""
    scope.write(":DIGitize;*OPC?")
    assert scope.read() == "1"
    return fetch(scope)


def fetch(scope) -> list[np.ndarray]:
    """The transfer half alone: both channels' preamble and block of the record held."""
    traces = []
    for channel in (1, 2):
        scope.write(f":WAV:SOUR CHAN{channel}")
        preamble = scope.query(":WAV:PRE?").split(",")
        scope.write(":WAV:DATA?")
        assert scope.read_bytes(2) == b"#0"
        codes = scope.read_binary_values("h", container=np.ndarray, header_fmt="empty",
                                         expect_termination=True, data_points=POINTS)
        traces.append(codes * float(preamble[7]) + float(preamble[8]))
    assert all(trace.size == POINTS for trace in traces)
    return traces


def rate(scope, seconds: float, action=acquire) -> tuple[float, int]:
    action(scope)                                      # warm-up: numba, caches
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or count < 3:
        action(scope)
        count += 1
    return count / (time.perf_counter() - started), count


def open_scope(rm, address: str, nodelay: bool):
    scope = rm.open_resource(address, read_termination="\n", write_termination="\n", timeout=20_000)
    if nodelay:   # pyvisa-py leaves Nagle on; NI-VISA's default is VI_ATTR_TCPIP_NODELAY true
        rm.visalib.sessions[scope.session].interface.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for text in SETUP:
        scope.write(text)
    return scope


class CannedScope:
    """A loopback TCP server answering the benchmark's queries with fixed bytes of the same size."""

    def __init__(self, preamble: bytes, block: bytes) -> None:
        self.replies = {b"*OPC?": b"1\n", b":WAV:PRE?": preamble, b":WAV:DATA?": block}
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        while chunk := conn.recv(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                for unit in line.split(b";"):
                    reply = self.replies.get(unit.strip())
                    if reply:
                        conn.sendall(reply)


PYVISA_SIM_ADDRESS = "TCPIP0::127.0.0.1::5025::SOCKET"


def pyvisa_sim_rate(directory: Path, reply_bytes: int, seconds: float) -> tuple[float, int]:
    """(replies/s, count) of pyvisa-sim answering `:WAV:DATA?` with `reply_bytes` bytes (LF included)."""
    path = directory / "scope.yaml"
    path.write_text(yaml.safe_dump({
        "spec": "1.1",
        "devices": {"scope": {"eom": {"TCPIP SOCKET": {"q": "\n", "r": "\n"}},
                              "dialogues": [{"q": ":WAV:DATA?", "r": "A" * (reply_bytes - 1)}]}},
        "resources": {PYVISA_SIM_ADDRESS: {"device": "scope"}},
    }, width=reply_bytes + 100))
    rm = pyvisa.ResourceManager(f"{path}@sim")
    scope = rm.open_resource(PYVISA_SIM_ADDRESS, read_termination="\n", write_termination="\n", timeout=20_000)
    try:
        assert len(scope.query(":WAV:DATA?")) + 1 == reply_bytes       # warm-up, and the size is right
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds or count < 3:
            scope.query(":WAV:DATA?")
            count += 1
        return count / (time.perf_counter() - started), count
    finally:
        scope.close()
        rm.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per row, s")
    args = parser.parse_args()

    from sim_backend import emulator
    from sim_backend.transport._bench_lookup import set_bench_opener
    from sim_backend.transport.bench_server import BenchServer

    set_bench_opener(emulator.open_bench)
    rows: dict[str, float] = {}
    transfers: dict[str, float] = {}   # transfers of a held record (both channels' preamble and block) per s
    with tempfile.TemporaryDirectory() as tmp:
        library = f"{station_file(Path(tmp))}#bench-{uuid.uuid4().hex[:8]}"
        bench = emulator.open_bench(library)
        prepare(bench)
        address = bench.station.instrument("scope").address
        in_process = open_scope(pyvisa.ResourceManager(f"{library}@nwlab"), address, nodelay=False)
        rows["in_process"], n = rate(in_process, args.seconds)

        profile = cProfile.Profile()
        profile.enable()
        for _ in range(max(3, n // 4)):
            acquire(in_process)
        profile.disable()
        stats = pstats.Stats(profile)
        total_s = sum(entry[2] for entry in stats.stats.values())           # own time of every function
        physics_s = stats.stats[next(k for k in stats.stats if k[2] == "simulate" and "transient" in k[0])][3]
        physics_share = physics_s / max(total_s, 1e-12)
        # Serving a stored reply, as pyvisa-sim does: fetch the held record again and again.
        fetches_per_s, _ = rate(in_process, args.seconds, fetch)
        preamble = (in_process.query(":WAV:PRE?") + "\n").encode()
        record = bench.world.panels["scope"].records[1]            # the same bytes :WAV:DATA? sends
        block = b"#0" + (record.codes.astype("<i2") << 8).tobytes() + b"\n"
        in_process.close()

        with BenchServer(bench) as server:
            tcp_address = server.instruments[[i.role for i in bench.instruments].index("scope")].server.visa_address
            rm = pyvisa.ResourceManager("@py")
            for nodelay, name in ((False, "tcp"), (True, "tcp_nodelay")):
                scope = open_scope(rm, tcp_address, nodelay)
                rows[name], _ = rate(scope, args.seconds)
                if nodelay:     # the transport alone: the held record's transfer, no new acquisition
                    transfers["tcp_nodelay"], _ = rate(scope, args.seconds, fetch)
                scope.close()
            canned = CannedScope(preamble, block)
            scope = open_scope(rm, f"TCPIP0::127.0.0.1::{canned.port}::SOCKET", nodelay=True)
            rows["raw_loopback_tcp"], _ = rate(scope, args.seconds)
            transfers["raw_loopback_tcp"], _ = rate(scope, args.seconds, fetch)
            scope.close()
        transfer_bytes = 2 * len(block)                 # the two channels' blocks of one acquisition
        sim_replies_per_s, _ = pyvisa_sim_rate(Path(tmp), transfer_bytes, args.seconds)

    print(f"{'path':<20}{'acq/s':>10}{'ms/acq':>10}   ({POINTS} points x 2 channels, {len(block)} B per block)")
    for name, value in rows.items():
        print(f"{name:<20}{value:>10.1f}{1e3 / value:>10.2f}")
    print(f"physics share of in-process time: {physics_share:.0%} (chip simulation inside the acquisition)")
    in_process_bps = transfer_bytes * rows["in_process"]
    serving_bps = transfer_bytes * fetches_per_s
    sim_bps = transfer_bytes * sim_replies_per_s
    ratio = serving_bps / sim_bps                       # like for like: a stored reply served
    end_to_end_ratio = in_process_bps / sim_bps         # ours also simulates the chip per record
    print(f"{'pyvisa_sim':<20}{sim_replies_per_s:>10.1f}{1e3 / sim_replies_per_s:>10.2f}   "
          f"(replies of {transfer_bytes} B ASCII, one query each)")
    print(f"bytes/s serving a held reply: in-process {serving_bps / 1e6:.2f} MB/s, pyvisa-sim "
          f"{sim_bps / 1e6:.2f} MB/s, ratio {ratio:.1f}x (target >= 50x)")
    print(f"bytes/s end to end (a new physical acquisition per record): {in_process_bps / 1e6:.2f} MB/s, "
          f"{end_to_end_ratio:.1f}x pyvisa-sim's static reply")
    tcp_vs_raw = rows["tcp_nodelay"] / rows["raw_loopback_tcp"]
    transfer_tcp_vs_raw = transfers["tcp_nodelay"] / transfers["raw_loopback_tcp"]
    met_rate, met_ratio = rows["in_process"] >= TARGET_IN_PROCESS_PER_S, ratio >= 50
    met_tcp = tcp_vs_raw >= TARGET_TCP_VS_RAW
    print(f"TCP (no delay) against a raw loopback server sending the same bytes: {tcp_vs_raw:.2f} per "
          f"acquisition (ours simulates the chip for each); {transfer_tcp_vs_raw:.2f} per transfer of a held "
          f"record ({transfers['tcp_nodelay']:.1f} against {transfers['raw_loopback_tcp']:.1f}/s: the transport alone)")
    print(f"targets: >= {TARGET_IN_PROCESS_PER_S:g} acq/s in-process {'met' if met_rate else 'NOT met'}; "
          f"TCP >= {TARGET_TCP_VS_RAW:g} of raw loopback {'met' if met_tcp else 'NOT met'}; "
          f">= 50x pyvisa-sim bytes/s {'met' if met_ratio else 'NOT met'}")
    print(json.dumps({"benchmark": "acquisition_throughput", "points": POINTS, "channels": 2,
                      "in_process_per_s": round(rows["in_process"], 1),
                      "tcp_per_s": round(rows["tcp_nodelay"], 1),
                      "raw_loopback_per_s": round(rows["raw_loopback_tcp"], 1),
                      "tcp_vs_raw_loopback": round(tcp_vs_raw, 3),
                      "transfers_per_s": {k: round(v, 1) for k, v in transfers.items()},
                      "transfer_tcp_vs_raw_loopback": round(transfer_tcp_vs_raw, 3),
                      "acquisitions_per_s": {k: round(v, 1) for k, v in rows.items()},
                      "in_process_vs_raw_loopback": round(rows["in_process"] / rows["raw_loopback_tcp"], 3),
                      "physics_share_in_process": round(physics_share, 3),
                      "transfer_bytes_per_acquisition": transfer_bytes,
                      "pyvisa_sim": {"reply_bytes": transfer_bytes, "reply": "static ASCII string",
                                     "replies_per_s": round(sim_replies_per_s, 1), "bytes_per_s": round(sim_bps)},
                      "in_process_bytes_per_s": round(in_process_bps),
                      "in_process_serving_bytes_per_s": round(serving_bps),
                      "in_process_vs_pyvisa_sim_bytes": round(ratio, 2),
                      "end_to_end_vs_pyvisa_sim_bytes": round(end_to_end_ratio, 2),
                      "targets": {"in_process_acquisitions_per_s": TARGET_IN_PROCESS_PER_S,
                                  "tcp_vs_raw_loopback": TARGET_TCP_VS_RAW, "vs_pyvisa_sim_bytes": 50},
                      "targets_met": {"in_process_acquisitions_per_s": met_rate, "tcp_vs_raw_loopback": met_tcp,
                                      "vs_pyvisa_sim_bytes": met_ratio}}))


if __name__ == "__main__":
    main()
