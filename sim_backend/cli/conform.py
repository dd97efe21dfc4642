"""`nwlab sim conform TRANSCRIPT [--station S]`: play a recorded session's writes to the emulated
instruments and report every reply that differs from what the instrument answered — the check
that keeps the emulator honest against real hardware (record with `nwlab record`).

Each recorded resource goes to the emulated instrument at the same address, else to the one
whose `*IDN?` names the same model. Replies are compared field by field (split at `,` and `;`):
a different number of fields, a number written differently (sign, decimal point, exponent) or a
text that differs is a *format* difference; numbers further apart than `--rtol` (relative) and
`--atol` are a *value* difference; an answer where the instrument gave none, or none where it
answered, is an *error behaviour* difference. Binary blocks are compared by length. Measured
values (temperatures, traces) differ between a lab and its emulation by nature: read their
lines as such. Exit status: 0 all agree, 1 some differ, 2 a bad transcript or station.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass

from contracts.files.transcript import Event, TranscriptError, read_transcript

_SPLIT = re.compile(r"[,;]")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Difference:
    step: int
    resource: str
    query: str
    kind: str                 # format, value, error behaviour
    recorded: str
    emulated: str

    def line(self, path: str) -> str:
        return (f"{path} step {self.step} ({self.resource}) {self.query.strip()!r}: {self.kind}: "
                f"instrument {self.recorded!r}, emulator {self.emulated!r}")


def register(commands: argparse._SubParsersAction) -> None:
    conform = commands.add_parser(
        "conform", help="replay a recorded session's writes to the emulator and report replies that differ",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    conform.add_argument("transcript", help="a transcript written by `nwlab record`")
    conform.add_argument("--station", default="", help="station file of the emulated bench (default: the "
                                                       "embedded emulated station)")
    conform.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance of numbers (default 1e-6)")
    conform.add_argument("--atol", type=float, default=0.0, help="absolute tolerance of numbers (default 0)")
    conform.set_defaults(handler=conform_command)


def conform_command(args: argparse.Namespace) -> int:
    # the transports' lookup here and below, not at the top: `nwlab` builds every command's
    # parser each time it starts, and most commands need no pyvisa
    from sim_backend.transport._bench_lookup import open_bench

    try:
        transcript = read_transcript(args.transcript)
    except TranscriptError as error:
        print(error, file=sys.stderr)
        return 2
    try:
        bench = open_bench(args.station)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"cannot open the bench for {args.station or 'the embedded station'}: {error}", file=sys.stderr)
        return 2
    devices = _devices_for(bench, transcript)
    differences, compared = [], 0
    for resource, events in transcript.by_resource().items():
        device = devices.get(resource)
        if device is None:
            identity = transcript.identities().get(resource, "no *IDN? recorded")
            print(f"{args.transcript}: {resource} ({identity}): no emulated instrument at that address or of "
                  "that model; not compared", file=sys.stderr)
            continue
        with bench.lock:
            found, count = compare(device, resource, events, rtol=args.rtol, atol=args.atol)
        differences += found
        compared += count
    for difference in differences:
        print(difference.line(args.transcript))
    print(f"{compared} replies compared, {len(differences)} differ", file=sys.stderr)
    return 1 if differences else 0


def _devices_for(bench, transcript) -> dict[str, object]:
    from sim_backend.transport._bench_lookup import device_table, lookup_key

    table = device_table(bench)
    by_model = {}
    for entry in table.values():
        entry.device.write_bytes(b"*IDN?\n")
        reply = entry.device.read_message() or b""
        fields = reply.decode("latin-1").split(",")
        if len(fields) > 1:
            by_model.setdefault(fields[1].strip().upper(), entry.device)
    identities = transcript.identities()
    devices = {}
    for resource in transcript.by_resource():
        entry = table.get(lookup_key(resource)) if _parses(resource) else None
        if entry is not None:
            devices[resource] = entry.device
            continue
        fields = identities.get(resource, "").split(",")
        if len(fields) > 1 and fields[1].strip().upper() in by_model:
            devices[resource] = by_model[fields[1].strip().upper()]
    return devices


def _parses(resource: str) -> bool:
    from sim_backend.transport._bench_lookup import lookup_key

    try:
        lookup_key(resource)
    except Exception:  # noqa: BLE001 - a name pyvisa cannot parse has no address to match
        return False
    return True


def compare(device, resource: str, events: list[Event], *, rtol: float, atol: float) -> tuple[list[Difference], int]:
    """Play `events`' writes to `device`; each recorded reply (the reads up to a message end)
    against the emulator's. Returns (differences, replies compared)."""
    differences: list[Difference] = []
    compared, query, index = 0, "", 0
    while index < len(events):
        event = events[index]
        index += 1
        if event.op == "write":
            device.write_bytes(event.raw)
            query = event.data
        elif event.op == "clear":
            device.device_clear()
        elif event.op == "read":
            recorded, step = event.raw, event.step
            while event.status == 0x3FFF0006 and index < len(events) and events[index].op == "read":
                event = events[index]              # VI_SUCCESS_MAX_CNT: the message goes on
                recorded += event.raw
                index += 1
            timed_out = event.status < 0
            emulated = device.read_message()
            compared += 1
            found = reply_difference(None if timed_out else recorded, emulated, rtol=rtol, atol=atol)
            if found is not None:
                kind, got, want = found
                differences.append(Difference(step, resource, query, kind, want, got))
    return differences, compared


def reply_difference(recorded: bytes | None, emulated: bytes | None, *, rtol: float,
                     atol: float) -> tuple[str, str, str] | None:
    """(kind, emulated, recorded) as text when the replies differ, else None."""
    if recorded is None or emulated is None:
        if recorded is None and emulated is None:
            return None
        return ("error behaviour", "no reply (timeout)" if emulated is None else _text(emulated),
                "no reply (timeout)" if recorded is None else _text(recorded))
    if recorded.startswith(b"#") or emulated.startswith(b"#"):
        if len(recorded) != len(emulated) or recorded[:2] != emulated[:2]:
            return "format", f"block of {len(emulated)} bytes", f"block of {len(recorded)} bytes"
        return None
    want, got = _text(recorded), _text(emulated)
    want_fields, got_fields = _SPLIT.split(want), _SPLIT.split(got)
    if len(want_fields) != len(got_fields):
        return "format", got, want
    kind = None
    for a, b in zip(want_fields, got_fields):
        a, b = a.strip(), b.strip()
        if _NUMBER.match(a) and _NUMBER.match(b):
            if _style(a) != _style(b):
                return "format", got, want
            x, y = float(a), float(b)
            if not math.isclose(x, y, rel_tol=rtol, abs_tol=atol):
                kind = "value"
        elif a != b:
            return "format", got, want
    return None if kind is None else (kind, got, want)


def _style(number: str) -> tuple[bool, bool, bool]:
    """How a number is written: leading sign, decimal point, exponent."""
    return number[:1] in "+-", "." in number, "e" in number.lower()


def _text(reply: bytes) -> str:
    return reply.decode("latin-1").rstrip("\r\n")
