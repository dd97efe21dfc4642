"""Ctrl-C and SIGTERM, however many arrive and whenever: the first stops the measuring, none
stops the ending.

`handling_stop_signals()` installs one handler for SIGINT and SIGTERM for the life of a command
(a campaign, a run). A signal interrupts only inside `interruptible()` — the steps of a run —
and there the first one raises `KeyboardInterrupt` at once, so a wait, a ramp or a computation
stops promptly; inside `deferred()` (a record being appended to the archive) it is raised as
soon as the record is complete. Everywhere else — the lock and dry run before a run, safe
state, the archive's finishing, the report — a signal is noted (`stop_requested()`, which a
campaign checks before starting anything new) and the work goes on to its end. Every signal
after the first is noted and otherwise ignored: a second Ctrl-C must never cut short the
sequence that makes the outputs safe and finishes the archive and report.

A query the first signal cut in the middle leaves its driver's session unsynchronised; the
driver clears and reconnects it before its next exchange (drivers/_common.py), so no reply is
read as the answer to a later query.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class _StopState:
    signals: list[int] = field(default_factory=list)   # every stop signal received, in order
    raised: bool = False                                # KeyboardInterrupt was raised for one
    interruptible_depth: int = 0
    deferred_depth: int = 0
    installed: bool = False


_state = _StopState()


def stop_requested() -> bool:
    """A stop signal arrived (whether or not it interrupted anything)."""
    return bool(_state.signals)


def signals_received() -> list[int]:
    return list(_state.signals)


def signal_text(signum: int) -> str:
    """A stop signal as the operator knows it: "Ctrl-C (SIGINT)", "SIGTERM"."""
    if signum == signal.SIGINT:
        return "Ctrl-C (SIGINT)"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopSignal(KeyboardInterrupt):
    """The KeyboardInterrupt a stop signal raises, naming it (SIGTERM is no Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum} ({signal.Signals(signum).name})")
        self.signum = signum


def stop_cause(error: BaseException | None = None) -> str:
    """What stopped the command, for its messages: the signal `error` was raised for, else the
    first stop signal received; a plain KeyboardInterrupt (Python's own Ctrl-C) reads "Ctrl-C"."""
    if isinstance(error, StopSignal):
        return signal_text(error.signum)
    return signal_text(_state.signals[0]) if _state.signals else "Ctrl-C"


def _say(text: str) -> None:
    # os.write, not print: a handler that ran while the main thread was inside a stderr write
    # (a progress bar) would otherwise raise "reentrant call" into the code it interrupted.
    try:
        os.write(2, f"\nnwlab: {text}\n".encode())
    except OSError:
        pass


def _may_raise() -> bool:
    return bool(_state.signals) and not _state.raised and _state.interruptible_depth > 0 \
        and _state.deferred_depth == 0


def _handle(signum: int, frame: object) -> None:
    _state.signals.append(signum)
    if _may_raise():
        _state.raised = True
        raise StopSignal(signum)
    if _state.deferred_depth and not _state.raised and _state.interruptible_depth:
        return                      # raised as soon as the record is written
    _say(f"{signal_text(signum)} received: stopping once the outputs are safe and the archive and report "
         "are finished; that is not interrupted")


def _raise_pending() -> None:
    if _may_raise():
        _state.raised = True
        raise StopSignal(_state.signals[0])


def handle_stop_signals_until_exit() -> None:
    """The handler for the rest of the process (the `nwlab run` and `campaign` commands): a
    signal while the outcome is printed or the interpreter exits is noted too, not raised."""
    if _state.installed or threading.current_thread() is not threading.main_thread():
        return
    for s in STOP_SIGNALS:
        signal.signal(s, _handle)
    _state.installed = True
    # At finalisation Python puts its default actions back (a SIGINT would then kill the
    # process, exit -2, though everything is finished); ignored signals it leaves ignored.
    atexit.register(_ignore_stop_signals)


def _ignore_stop_signals() -> None:
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


@contextmanager
def handling_stop_signals() -> Iterator[None]:
    """The stop-signal handler for the duration of the block (re-entrant; main thread only:
    Python runs handlers in the main thread, and elsewhere there is nothing to install)."""
    if _state.installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handle) for s in STOP_SIGNALS}
    _state.installed = True
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _state.__init__()  # type: ignore[misc]   # the next command in this process starts afresh


@contextmanager
def interruptible() -> Iterator[None]:
    """The measuring part of a run: the first stop signal raises KeyboardInterrupt here (also
    one that arrived just before it was entered)."""
    with handling_stop_signals():
        _state.interruptible_depth += 1
        try:
            _raise_pending()
            yield
        finally:
            _state.interruptible_depth -= 1


@contextmanager
def deferred() -> Iterator[None]:
    """A section a signal must not cut (an HDF5 append): the first signal takes effect after it."""
    with handling_stop_signals():
        _state.deferred_depth += 1
        try:
            yield
        finally:
            _state.deferred_depth -= 1
        _raise_pending()
