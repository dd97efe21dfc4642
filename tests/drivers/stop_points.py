"""A stop signal (a KeyboardInterrupt) raised at a chosen function entry while an action runs.

CPython runs a pending signal handler as a function starts, so each function entry is a place
where a Ctrl-C or a SIGTERM turned into an exception can appear. `entries_during` lists the entries an
`entry` function names while an action runs (and where each driver's reconnect begins and ends);
`stopped_at` runs the action again with `Stop` raised at one of them. A trace function's 'call'
event is each entry; generators' frames are left out (resumed, or closed when collected, they are
no function's entry), and the cyclic garbage collector is off during a trace, so that no
finalizer it would run swallows the stop (Python ignores an exception raised in one) and both
runs of an action see the same entries. (No collection before each trace: in a test process,
with its ~200,000 objects, each took ~0.1 s, most of these tests' time.)
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pyvisa.errors

DRIVERS_DIR = str(Path(__file__).resolve().parents[2] / "drivers")
PYVISA_FILES = re.compile(r"[/\\]pyvisa(_py)?[/\\]")


#: Where a reconnect reopens the link, checks the old session, configures the new one and writes
#: the role settings again: every entry of these is tried (`reconnect_picks`).
RECONNECT_PATH = frozenset({"_reconnect", "_reopen", "_let_old_session_finish", "_set_aside_after_link_loss",
                            "_reapply_after_link_loss", "reapply_role_settings", "_resynchronise", "_send_held",
                            "commit", "commit_uncertain", "pyvisa open_resource", "pyvisa close", "pyvisa clear",
                            "pyvisa read_termination", "pyvisa write_termination", "pyvisa __set__"})


class Stop(KeyboardInterrupt):
    """The injected stop signal."""


def generator_exit_entry(frame) -> str | None:
    """The exit of a context manager a driver's generator makes (where a handler runs before the
    generator resumes, and it stays suspended), named after the generator; None for any other."""
    code = frame.f_code
    if code.co_name == "__exit__" and code.co_filename == contextlib.__file__:
        generator = getattr(frame.f_locals.get("self"), "gen", None)
        if generator is not None and generator.gi_code.co_filename.startswith(DRIVERS_DIR):
            return f"{generator.gi_code.co_name} (its exit)"
    return None


def client_entry(frame) -> str | None:
    """Any function entry in the drivers' code ("_reopen") or in pyvisa's and pyvisa-py's, the
    VISA client both transports go through ("pyvisa timeout"), or a driver generator's exit."""
    code = frame.f_code
    if code.co_flags & inspect.CO_GENERATOR:
        return None
    if code.co_filename.startswith(DRIVERS_DIR):
        return code.co_name
    if PYVISA_FILES.search(code.co_filename):
        return f"pyvisa {code.co_name}"
    return generator_exit_entry(frame)


#: The name `first_after` gives pyvisa's VisaIOError.__init__: where a timeout is being raised.
TIMEOUT_RAISED = "pyvisa VisaIOError"
# The module's path as its frames name it and as resolved: the two differ where the environment is
# reached through a symbolic link (a worktree sharing a venv), and frames carry the one imported.
_PYVISA_ERRORS = frozenset({pyvisa.errors.__file__, str(Path(pyvisa.errors.__file__).resolve())})


def first_after(began_at: frozenset[str], where: str):
    """An entry function naming the entries of `where` (a function of the drivers', or
    TIMEOUT_RAISED) once a function of the drivers' in `began_at` was entered (at once if it
    is empty): stopped at its first, a trial stops at that moment, however many exchanges
    came before it."""
    began = [not began_at]

    def entry(frame) -> str | None:
        code = frame.f_code
        ours = code.co_filename.startswith(DRIVERS_DIR)
        began[0] = began[0] or (ours and code.co_name in began_at)
        if not began[0]:
            return None
        if where == TIMEOUT_RAISED:
            return where if code.co_name == "__init__" and code.co_filename in _PYVISA_ERRORS else None
        return where if ours and code.co_name == where else None
    return entry


def entries_during(action: Callable[[], object], entry=client_entry) -> tuple[list[str], list[tuple[int, int]]]:
    """The function entries `entry` names while `action` runs, in order, and the (first, last)
    entry numbers (from 1) of each driver's reconnect among them."""
    names: list[str] = []
    reconnects: list[tuple[int, int]] = []

    def trace(frame, event, arg):
        if event == "call" and (name := entry(frame)):
            names.append(name)
            if name == "_reconnect" and frame.f_code.co_filename.startswith(DRIVERS_DIR):
                began = len(names)

                def on_return(frame, event, arg):
                    if event == "return":
                        reconnects.append((began, len(names)))
                    return on_return
                return on_return
        return None
    with _traced(trace):
        action()
    return names, reconnects


def stopped_at(index: int, action: Callable[[], object], entry=client_entry) -> Stop | None:
    """`action` with Stop raised at its `index`-th entry that `entry` names: the exception, with
    its traceback (alive, as in the handler where a run makes its instruments safe), or None."""
    seen = [0]

    def trace(frame, event, arg):
        if event == "call" and (name := entry(frame)):
            seen[0] += 1
            if seen[0] == index:
                sys.settrace(None)
                raise Stop(f"at {name}")
        return None
    try:
        with _traced(trace):
            action()
    except Stop as stop:
        return stop
    return None


@contextlib.contextmanager
def _traced(trace):
    gc.disable()
    sys.settrace(trace)
    try:
        yield
    finally:
        sys.settrace(None)
        gc.enable()


def reconnect_picks(names: list[str], reconnects: list[tuple[int, int]], spread: int) -> list[int]:
    """Entry numbers to stop at in the one reconnect of `entries_during`'s result: every entry of
    RECONNECT_PATH's functions and `spread` more spread evenly over the rest."""
    assert len(reconnects) == 1 and reconnects[0][1] - reconnects[0][0] > 20, (reconnects, names[:40])
    first, last = reconnects[0]
    picks = sorted({index for index in range(first, last + 1) if names[index - 1] in RECONNECT_PATH}
                   | {first + round(k * (last - first) / (spread - 1)) for k in range(spread)})
    assert {"_reopen", "pyvisa read_termination", "pyvisa __set__"} <= {names[index - 1] for index in picks}
    return picks


def in_the_way(driver, where: str) -> list[str]:
    """What a stop left in the way of the next exchange: writes held for a later message, or the
    exchange lock taken (another thread's safe state would wait for ever)."""
    problems = [f"{where}: writes left held: {driver._held}"] if driver._held is not None else []
    free: list[bool] = []

    def take_and_give_back() -> None:
        taken = driver.exchange_lock.acquire(timeout=1.0)
        free.append(taken)
        if taken:
            driver.exchange_lock.release()
    other = threading.Thread(target=take_and_give_back)
    other.start()
    other.join(5)
    return problems if free == [True] else problems + [f"{where}: the exchange lock is held"]


def stops_in_the_reconnect(driver, faults, dropped: Callable[[], object], *, prepare: Callable[[], object],
                           left_safe: Callable[[str], list[str]], follow: Callable[[], object], spread: int = 0,
                           picks: Callable[[list[str], list[tuple[int, int]]], list[int]] | None = None) -> list[str]:
    """The failures of a trial at each entry `picks(names, reconnects)` chooses (by default
    `reconnect_picks`, `spread` over the rest) in the reconnect `dropped`
    runs into (a drop injected into `faults`, then a verb): the driver made safe and `prepare`d,
    `dropped` run with the stop there, then, the exception alive as in a run's handler, what is
    `in_the_way` and what `left_safe(where)` finds (it calls the safe state and checks the
    instrument), and last `follow()`, the next verb, which must land exactly."""
    names, reconnects = entries_during(dropped)
    failures: list[str] = []
    chosen = picks(names, reconnects) if picks else reconnect_picks(names, reconnects, spread)
    for index in chosen:
        driver.safe_state()
        prepare()
        stop = stopped_at(index, dropped)
        faults.clear()                      # a drop the stop came before is not left for the next trial
        where = f"stop at entry {index} ({names[index - 1]})"
        if stop is None:
            failures.append(f"{where}: not reached")
            continue
        try:
            blocked = in_the_way(driver, where)
            failures += blocked or left_safe(where)
        except Exception as error:  # noqa: BLE001 - every trial is reported, not the first only
            failures.append(f"{where}: {type(error).__name__}: {error}")
        finally:
            del stop                        # the handler ends
        try:
            follow()
        except Exception as error:  # noqa: BLE001 - every trial is reported
            failures.append(f"after a {where}: {type(error).__name__}: {error}")
    return failures
