"""Helpers for bytes-in/bytes-out tests of personalities (imported by the test modules)."""

from __future__ import annotations

from example_pulser import ExamplePulser
from sim_backend.scpi.personality import Personality


def ask(device: Personality, text: str | bytes) -> bytes | None:
    """Send one message (LF appended when missing) and return the next answer or None."""
    data = text.encode("latin-1") if isinstance(text, str) else text
    device.write_bytes(data if data.endswith(b"\n") else data + b"\n")
    return device.read_message()


def drain_errors(device: Personality) -> list[str]:
    """Every queued error, oldest first, as SYST:ERR? answers them (without '+0,No error')."""
    found = []
    while True:
        answer = ask(device, "SYST:ERR?")
        assert answer is not None and answer.endswith(b"\n")
        if answer == b'+0,"No error"\n':
            return found
        found.append(answer[:-1].decode())


def codes(device: Personality) -> list[int]:
    return [int(entry.split(",")[0]) for entry in drain_errors(device)]


def fresh_pulser() -> ExamplePulser:
    """An example pulser with the power-on event already read."""
    device = ExamplePulser()
    assert ask(device, "*ESR?") == b"128\n"
    return device
