"""What the personality tests share: stand-in worlds, a one-instrument bench, bytes in and out."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np

from sim_backend.bench.scope import ChannelRecord
from sim_backend.clock import LabClock
from sim_backend.transport._bench_lookup import set_bench_opener


class StandInWorld:
    """What a generator or scope personality uses of the world; no generator wiring, so nothing
    ever triggers a scope. Tests set `time_s`."""

    def __init__(self) -> None:
        self.panels: dict = {}
        self.time_s = 0.0
        self.station = SimpleNamespace(pulse_inputs=(), readout=(), bias=())

    def now_s(self) -> float:
        return self.time_s

    def input_idle(self) -> bool:
        return True         # no pulse inputs: nothing drives a chip

    def input_steady(self) -> bool:
        return True


class ClockedWorld:
    """What a temperature controller uses of the world: panels and a lab clock, frozen until a
    test moves it with `clock.advance`."""

    def __init__(self) -> None:
        self.clock = LabClock(0)
        self.panels: dict = {}

    def now_s(self) -> float:
        return self.clock.now_s()


@contextmanager
def one_instrument_bench(device, role: str, model: str, address: str) -> Iterator[tuple[SimpleNamespace, str]]:
    """A bench holding `device` at `address`, opened by pyvisa as ``f"{path}@nwlab"``: (bench, path)."""
    bench = SimpleNamespace(devices={address: device}, lock=threading.RLock(), instruments=[(role, model, address)])
    previous = set_bench_opener(lambda library_path: bench)
    try:
        yield bench, f"stand-in-{model}-{uuid.uuid4().hex}.yaml#b"
    finally:
        set_bench_opener(previous)


@contextmanager
def over_tcp(bench) -> Iterator[str]:
    """`bench` served on localhost while the block runs: the first instrument's VISA address."""
    from sim_backend.transport.bench_server import BenchServer

    with BenchServer(bench) as server:
        yield server.instruments[0].server.visa_address


def raw(device, text: str) -> bytes | None:
    """Send one LF-terminated message; the reply as bytes (None when there is none)."""
    device.write_bytes(text.encode() + b"\n")
    return device.read_message()


def ask(device, text: str) -> str | None:
    """Send one LF-terminated message; the reply as text without its LF (None when there is none)."""
    answer = raw(device, text)
    return None if answer is None else answer.decode("latin-1").removesuffix("\n")


def errors(device) -> list[int]:
    """Drain SYSTem:ERRor?: the codes queued, oldest first."""
    found = []
    while (answer := ask(device, "SYST:ERR?")) != '+0,"No error"':
        found.append(int(answer.split(",")[0]))
    return found


def ask_crlf(device, text: str) -> bytes | None:
    """Send one CR LF-terminated message (Lake Shore); the reply as bytes."""
    device.write_bytes(text.encode() + b"\r\n")
    return device.read_message()


def value_crlf(device, text: str) -> str:
    """The text of a CR LF-terminated reply, which must come."""
    answer = ask_crlf(device, text)
    assert answer is not None and answer.endswith(b"\r\n"), answer
    return answer[:-2].decode()


def acquire(panel, codes_by_channel: dict[int, np.ndarray]) -> None:
    """Stand in for a completed scope acquisition: records taken with the panel's present settings."""
    for number, codes in codes_by_channel.items():
        channel = panel.channels[number]
        panel.records[number] = ChannelRecord(np.asarray(codes, np.int16), channel.lsb_v, channel.offset_v,
                                              panel.first_sample_s, panel.sample_interval_s)
    panel.state, panel.continuous = "done", False
    panel.acquisitions_completed += 1


def infiniium_trace(scope, channel) -> np.ndarray:
    """The stock QCoDeS Infiniium's DSOTraceParam.get_raw, its own sequence and scaling, with a
    container pyvisa accepts (qcodes 0.58 passes npt.NDArray, which pyvisa cannot build)."""
    channel.trace.update_setpoints()
    scope.write(f":WAV:SOUR {channel.channel_name}")
    scope.write(":WAV:DATA?")
    assert scope.visa_handle.read_bytes(2) == b"#0"
    data = scope.visa_handle.read_binary_values("h", container=np.ndarray, header_fmt="empty",
                                                expect_termination=True, data_points=channel.trace._points)
    return data * channel.trace._yincrement + channel.trace._yoffset
