"""How the transports find a bench, and what they need from it.

The bench (`sim_backend.emulator.open_bench`) owns the instruments. The transports reach
it through one replaceable function, so they can be tested with small stand-in devices and
so a test can point a whole pyvisa backend at a bench it built itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from contracts.files.addresses import canonical_resource_name
from sim_backend.scpi.device import MessageDevice
from sim_backend.faults.plan import NO_FAULTS, FaultPlan


class BenchLike(Protocol):
    """The part of `sim_backend.bench` the transports use."""

    #: Instruments keyed by VISA resource name as written in the station file.
    devices: Mapping[str, MessageDevice]
    #: Held around every device call: TCP serves several clients from several threads.
    lock: AbstractContextManager[Any]


BenchOpener = Callable[[str], BenchLike]

_opener: BenchOpener | None = None
_opener_guard = threading.Lock()


def set_bench_opener(opener: BenchOpener | None) -> BenchOpener | None:
    """Use `opener(library_path)` to find benches; None restores `sim_backend.emulator`.

    Returns the previous opener so a test can put it back.
    """
    global _opener
    with _opener_guard:
        previous, _opener = _opener, opener
    return previous


def open_bench(library_path: str) -> BenchLike:
    """The bench for `"<station.yaml>[#<bench-id>]"` ("" is the embedded default station)."""
    opener = _opener
    if opener is None:
        try:
            from sim_backend.emulator import open_bench as emulator_open_bench
        except ImportError as exc:
            raise RuntimeError(
                "no bench available: sim_backend.emulator cannot be imported "
                f"({exc}); install a bench opener with set_bench_opener()"
            ) from exc
        opener = emulator_open_bench
    return opener(library_path)


def faults_for(bench: BenchLike, address: str) -> FaultPlan:
    """The bench's fault plan for one instrument; benches without fault support are healthy."""
    hook = getattr(bench, "faults_for", None)
    return NO_FAULTS if hook is None else hook(address)


@dataclass(frozen=True)
class BenchDevice:
    bench_key: str  # the address as the bench spells it; faults_for() takes this
    name: str  # canonical VISA resource name
    device: MessageDevice


def lookup_key(name: str) -> str:
    """Table key for a resource name: canonical, then case-blind as VISA names are."""
    return canonical_resource_name(name).upper()


def device_table(bench: BenchLike) -> dict[str, BenchDevice]:
    """`lookup_key(address)` -> the bench's device at that address."""
    table: dict[str, BenchDevice] = {}
    for key, device in bench.devices.items():
        entry = BenchDevice(key, canonical_resource_name(key), device)
        other = table.setdefault(entry.name.upper(), entry)
        if other is not entry:
            raise ValueError(f"bench lists {key!r} and {other.bench_key!r}: both are {entry.name}")
    return table


def bench_instruments(bench: BenchLike) -> list[tuple[str, str, str]]:
    """(role, model, address) per instrument, from `Bench.instruments`.

    Entries may be tuples or objects with `role`, `model` and `address` attributes.
    """
    entries: Iterable[Any] | None = getattr(bench, "instruments", None)
    if entries is None:
        raise TypeError(f"{type(bench).__name__} has no 'instruments' listing")
    rows = []
    for entry in entries:
        if isinstance(entry, tuple):
            role, model, address = entry
        else:
            role, model, address = entry.role, entry.model, entry.address
        rows.append((str(role), str(model), str(address)))
    return rows
