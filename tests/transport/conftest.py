"""Fixtures: stand-in benches behind the transports' bench opener."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from stand_in import EchoInstrument, StandInBench  # noqa: E402

from sim_backend.transport._bench_lookup import set_bench_opener  # noqa: E402

#: Benches by library path, for every test in this process (pyvisa caches libraries forever,
#: so every test uses fresh, unique paths).
_BENCHES: dict[str, StandInBench] = {}


def _open_stand_in(library_path: str) -> StandInBench:
    try:
        return _BENCHES[library_path]
    except KeyError:
        raise FileNotFoundError(f"no stand-in bench {library_path!r}") from None


@pytest.fixture
def make_bench() -> Iterator[Callable[..., tuple[str, StandInBench]]]:
    """`make_bench(devices=None)` -> (unique library path, bench) known to the bench opener."""
    previous = set_bench_opener(_open_stand_in)

    def make(devices: dict[str, EchoInstrument] | None = None, **kw) -> tuple[str, StandInBench]:
        path = f"stand-in-{uuid.uuid4().hex}.yaml#bench"
        bench = StandInBench(devices if devices is not None else {
            "GPIB::12::INSTR": EchoInstrument(),
        }, **kw)
        _BENCHES[path] = bench
        return path, bench

    yield make
    set_bench_opener(previous)
