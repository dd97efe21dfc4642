"""How the transports find a bench, and what they need from it.

The bench (`sim_backend.bench.registry.open_bench`) owns the instruments. The transports reach
it through one replaceable function, so they can be tested with small stand-in devices and
so a test can point a whole pyvisa backend at a bench it built itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

from sim_backend.scpi.device import MessageDevice
from sim_backend.transport.faults import NO_FAULTS, FaultPlan
from sim_backend.transport.resource_names import normalize_resource_name


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
    """Use `opener(library_path)` to find benches; None restores the bench registry.

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
            from sim_backend.bench.registry import open_bench as registry_open_bench
        except ImportError as exc:
            raise RuntimeError(
                "no bench available: sim_backend.bench.registry cannot be imported "
                f"({exc}); install a bench opener with set_bench_opener()"
            ) from exc
        opener = registry_open_bench
    return opener(library_path)


def faults_for(bench: BenchLike, address: str) -> FaultPlan:
    """The bench's fault plan for one instrument; benches without fault support are healthy."""
    hook = getattr(bench, "faults_for", None)
    return NO_FAULTS if hook is None else hook(address)


def device_table(bench: BenchLike) -> dict[str, tuple[str, MessageDevice]]:
    """Normalised resource name -> (the bench's own key, device)."""
    table: dict[str, tuple[str, MessageDevice]] = {}
    for key, device in bench.devices.items():
        name = normalize_resource_name(key)
        if name in table:
            raise ValueError(f"bench lists {key!r} and {table[name][0]!r}: both are {name}")
        table[name] = (key, device)
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
