"""Fixtures shared across the suite: a fresh emulated bench per test."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMULATED_STATION = ROOT / "stations" / "emulated.yaml"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per core and one more. Many tests spend much of their time waiting
    on a subprocess, a socket, a browser or the emulated clock, while one worker's CPU work keeps
    a core busy: on 2 cores the suite took 8 min 16-25 s with 2 workers, 6 min 57 s with 3 and
    7 min 08 s with 4 (2,039 tests, 2026-12-05)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores + 1


def pytest_configure(config: pytest.Config) -> None:
    """With workers, compile the compiled kernels once first, in this (the controlling) process.
    Where their on-disk cache is empty (a fresh clone whose environment `.ci/env` did not set up),
    every worker, and every `nwlab` process a test starts, compiled them at once on its own: 24 s
    alone, 37.5 s each for three at a time on 2 cores. Once cached, this costs the time to load
    them (about 2 s)."""
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    from sim_backend.compile_kernels import compile_kernels

    compile_kernels(EMULATED_STATION)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with a test marked `slow` first, each file's tests kept together and in order: the
    workers take whole files (--dist loadfile) in this order, so a long file started last cannot
    keep one worker busy while the other has nothing left."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: the order within stays


@pytest.fixture(autouse=True)
def _stop_signal_handling_as_found():
    """Each test starts with the stop-signal handling the process had: a command run in-process
    (`main(["run", ...])`) installs nwlab's handler for the rest of the process, as `nwlab run`
    does, and a signal it noted would otherwise read as a stop request in every later test."""
    from lab.execution import interrupts

    handlers = {s: signal.getsignal(s) for s in interrupts.STOP_SIGNALS}
    yield
    for s, handler in handlers.items():
        signal.signal(s, handler)
    interrupts._state.__init__()  # the module's own reset between commands (handling_stop_signals)


@pytest.fixture
def bench_path() -> str:
    """A library path naming a bench no other test uses: "<station.yaml>#<bench-id>"."""
    return f"{EMULATED_STATION}#test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def bench(bench_path):
    """The emulated bench of `stations/emulated.yaml`, fresh for this test.

    pyvisa reaches the same object through `ResourceManager(f"{bench_path}@nwlab")`.
    """
    from sim_backend import emulator
    from sim_backend.transport._bench_lookup import set_bench_opener

    previous = set_bench_opener(emulator.open_bench)
    try:
        yield emulator.open_bench(bench_path)
    finally:
        emulator.close_bench(bench_path)
        set_bench_opener(previous)


@pytest.fixture
def visalib(bench, bench_path) -> str:
    """The `visalib` string that opens this test's bench through pyvisa."""
    return f"{bench_path}@nwlab"


@pytest.fixture
def variant_bench(tmp_path):
    """Factory: a fresh bench from a copy of the emulated station with other models in some roles.

        bench, visalib = variant_bench(pulser=("keysight_33522b", "drivers.keysight_33500b.Keysight33500B"))

    Each keyword is a role name under `instruments:`; the value is (emulator model, driver class).
    """
    import yaml

    from sim_backend import emulator
    from sim_backend.transport._bench_lookup import set_bench_opener

    previous = set_bench_opener(emulator.open_bench)
    opened = []

    def make(**models: tuple[str, str]):
        tree = yaml.safe_load(EMULATED_STATION.read_text())
        tree["chip"] = str(EMULATED_STATION.parent / tree["chip"])
        for role_name, (model, driver) in models.items():
            tree["instruments"][role_name]["emulator"]["model"] = model
            tree["instruments"][role_name]["driver"] = driver
        path = tmp_path / f"station-{uuid.uuid4().hex[:8]}.yaml"
        path.write_text(yaml.safe_dump(tree, sort_keys=False))
        library_path = f"{path}#variant"
        opened.append(library_path)
        return emulator.open_bench(library_path), f"{library_path}@nwlab"

    try:
        yield make
    finally:
        for library_path in opened:
            emulator.close_bench(library_path)
        set_bench_opener(previous)


@pytest.fixture
def private_station(tmp_path) -> Path:
    """A copy of the emulated station with its own run lock and its own in-process bench."""
    path = tmp_path / "emulated.yaml"
    text = EMULATED_STATION.read_text().replace(
        "chip: chips/default-neuron.yaml", f"chip: {EMULATED_STATION.parent / 'chips' / 'default-neuron.yaml'}")
    path.write_text(text.replace("visalib: emulated.yaml@nwlab",
                                 f"visalib: {path}#private-{uuid.uuid4().hex[:8]}@nwlab"))
    return path
