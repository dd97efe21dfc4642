"""What the two conformance walks share: reviewed causes, matching a failure to one, and the
table docs/conformance.md shows."""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

TRANSPORTS = ("inproc", "tcp")
#: How long a stock driver waits for a reply (its timeout, s). A refused query gets none (the
#: instrument queues an error instead), so each refusal costs this much. In process the emulator
#: answers inside the write; over TCP a loaded machine may answer later than this: after a
#: timeout, `reply_came_late` tells a late reply from none, and the walk reads the value again
#: with LATE_REPLY_WAIT_S (it was 0.5 s over TCP for every query: 31 s of the two TCP walks).
REPLY_WAIT_S = {"inproc": 0.1, "tcp": 0.1}
LATE_REPLY_WAIT_S = 10.0
T = TypeVar("T")
#: (model, transport, directory) -> (passed, [(path, failure)])
Walk = Callable[[str, str, Path], tuple[int, list[tuple[str, str]]]]


@dataclass(frozen=True)
class Cause:
    """A reviewed reason a stock driver's parameter or property fails on the instrument it claims."""

    name: str
    reason: str
    error: str                       # regex on "<operation>: <exception type>: <message>…"
    path: str = ".*"                 # regex on the parameter's or property's path


def timed_out(error: BaseException) -> bool:
    return "VI_ERROR_TMO" in str(error) or "Timeout expired" in str(error)


@contextmanager
def waiting(resource, wait_s: float) -> Iterator[None]:
    """The pyvisa `resource`'s timeout set to `wait_s` inside."""
    before, resource.timeout = resource.timeout, wait_s * 1000
    try:
        yield
    finally:
        resource.timeout = before


def identity_of(resource) -> str:
    """The `*IDN?` answer `reply_came_late` reads up to, asked with LATE_REPLY_WAIT_S."""
    with waiting(resource, LATE_REPLY_WAIT_S):
        return resource.query("*IDN?").strip()


def reply_came_late(resource, identity: str) -> bool:
    """After a query of `resource` timed out: whether a reply still came (a slow answer, not a
    refusal). `*IDN?` is sent and everything read up to its answer, `identity`, with
    LATE_REPLY_WAIT_S: what came before it was the late reply (any reply but the identity can
    be one, "1" included), and the session is in step again either way."""
    with waiting(resource, LATE_REPLY_WAIT_S):
        resource.write("*IDN?")
        late = 0
        while resource.read().strip() != identity:
            late += 1
        return late > 0


def read_allowing_late(read: Callable[[], T], resource, identity: str) -> T:
    """`read()` (a stock driver's get); one that timed out is read again, waiting
    LATE_REPLY_WAIT_S, if its reply still came (a loaded machine), not if none did (a refused
    query: the timeout is raised)."""
    try:
        return read()
    except Exception as error:
        if not (timed_out(error) and reply_came_late(resource, identity)):
            raise
    with waiting(resource, LATE_REPLY_WAIT_S):
        return read()


def cause_of(causes: Sequence[Cause], path: str, failure: str) -> Cause | None:
    return next((c for c in causes if re.search(c.error, failure) and re.fullmatch(c.path, path)), None)


def unexplained(causes: Sequence[Cause], failures: list[tuple[str, str]]) -> list[str]:
    """The failures no reviewed cause explains, one line each."""
    return [f"{path}: {failure[:160]}" for path, failure in failures if cause_of(causes, path, failure) is None]


def table(models: dict[str, str], walk: Walk, causes: Sequence[Cause], what: str, counted: str) -> str:
    """Per model (-> its stock driver's name) and transport: the count, the passes and the
    failures by cause; `what` names the drivers' library, `counted` what the walk counts."""
    rows = [f"| model | stock {what} driver | transport | {counted} | pass | failures by reviewed cause |",
            "|---|---|---|---|---|---|"]
    root = Path(tempfile.mkdtemp())
    for model, driver in sorted(models.items()):
        for transport in TRANSPORTS:
            directory = root / f"{model}-{transport}"
            directory.mkdir()
            passed, failures = walk(model, transport, directory)
            found = Counter(getattr(cause_of(causes, p, f), "name", "UNEXPLAINED") for p, f in failures)
            text = "; ".join(f"{name} {count}" for name, count in sorted(found.items())) or "none"
            rows.append(f"| {model} | {driver} | {transport} | {passed + len(failures)} | {passed} | {text} |")
    return "\n".join(rows)
