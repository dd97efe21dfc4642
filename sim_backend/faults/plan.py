"""Fault hooks: what a transport does with a reply before the controller sees it.

The bench decides *which* faults happen (`Bench.faults_for(address) -> FaultPlan`); the
transports only carry them out, so one plan means the same thing in-process and over TCP:

| action      | in-process VISA library                      | TCP server                      |
|-------------|----------------------------------------------|---------------------------------|
| deliver     | reply is read                                | reply is sent                   |
| delay       | reply arrives `delay_s` later (real time);   | sent after `delay_s`            |
|             | a read whose timeout ends first times out    |                                 |
| withhold    | reply is lost; the read times out            | never sent; the client times out|
| drop        | session is dead: VI_ERROR_CONN_LOST until    | connection closed; reconnecting |
|             | it is closed and reopened                    | works                           |
| garble      | `payload` replaces the reply                 | same                            |
| truncate    | only the first `keep_bytes` arrive           | same                            |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

ActionKind = Literal["deliver", "delay", "withhold", "drop", "garble", "truncate"]


@dataclass(frozen=True)
class ReplyAction:
    """What happens to one reply. Build with the helpers below, not by hand."""

    kind: ActionKind = "deliver"
    delay_s: float = 0.0
    keep_bytes: int = 0
    #: Replacement bytes for "garble"; None means line noise over the original reply.
    payload: bytes | None = None

    def __post_init__(self) -> None:
        if self.delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {self.delay_s}")
        if self.keep_bytes < 0:
            raise ValueError(f"keep_bytes must be >= 0, got {self.keep_bytes}")

    def apply(self, message: bytes) -> bytes | None:
        """Bytes the controller receives for `message`; None when nothing arrives."""
        if self.kind in ("deliver", "delay"):
            return message
        if self.kind == "garble":
            return line_noise(message) if self.payload is None else self.payload
        if self.kind == "truncate":
            return message[: self.keep_bytes]
        return None  # withhold, drop


def line_noise(message: bytes) -> bytes:
    """Flip one bit of every byte before the trailing CR/LF, never creating a CR or LF, so
    the controller reads one whole reply of the same length with every character wrong."""
    body = message.rstrip(b"\r\n")
    return bytes(_flip(b) for b in body) + message[len(body) :]


def _flip(byte: int) -> int:
    flipped = byte ^ 0x20  # letter case / digit -> control: obviously wrong, still one byte
    return flipped if flipped not in b"\r\n" else byte ^ 0x01


DELIVER = ReplyAction()


def delay(delay_s: float) -> ReplyAction:
    return ReplyAction("delay", delay_s=delay_s)


def withhold() -> ReplyAction:
    return ReplyAction("withhold")


def drop() -> ReplyAction:
    return ReplyAction("drop")


def garble(payload: bytes | None = None) -> ReplyAction:
    return ReplyAction("garble", payload=payload)


def truncate(keep_bytes: int) -> ReplyAction:
    return ReplyAction("truncate", keep_bytes=keep_bytes)


class FaultPlan(Protocol):
    """Per-instrument fault schedule owned by the bench; consulted once per reply."""

    def before_reply(self, message: bytes) -> ReplyAction:
        """Decide the fate of `message` (a whole reply including its terminator)."""
        ...


class NoFaults:
    """The fault plan of a healthy instrument."""

    def before_reply(self, message: bytes) -> ReplyAction:
        return DELIVER


NO_FAULTS = NoFaults()


class ScriptedFaults:
    """Apply `actions` to the next replies in order, then deliver normally.

    A plain, deterministic plan for tests and for benches that script a failure.
    """

    def __init__(self, *actions: ReplyAction) -> None:
        self._actions = list(actions)

    def before_reply(self, message: bytes) -> ReplyAction:
        return self._actions.pop(0) if self._actions else DELIVER

    @property
    def pending(self) -> int:
        return len(self._actions)
