"""Fixtures shared across the suite: a fresh emulated bench per test."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMULATED_STATION = ROOT / "stations" / "emulated.yaml"


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
