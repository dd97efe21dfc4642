"""A stop signal (Ctrl-C, a SIGTERM turned into an exception) handled at a function entry on a
generator's write path, in the middle of a pulse configuration, wherever it lands.

CPython runs a pending signal handler when a function starts, so each function entry in the
drivers' code is a place where the exception can appear: here it is raised there (a trace
function at the call event) at each entry of the functions that send, hold, check or commit a
message, one trial at each. After each trial, from the emulated instrument itself:
- no level outside the envelope ever reached it, and no output was on while the guard believed it
  off (`pulser_problems`, at every state it took);
- what the guard believes known (the levels, the output) is what the instrument holds: a guard
  left with the levels from before a message the instrument ran admitted an offset that put the
  levels past the envelope (an interrupt as the guard's commit starts);
- nothing is left held for a later message and the exchange lock is free (another thread's
  safe state would otherwise wait for ever);
- the safe state, called where a run calls it (in the handler, the exception alive), returns
  with the generator off at 0 V DC, and the next configuration is exact.

Real drivers, the emulated bench, both transports."""

from __future__ import annotations

import contextlib
import sys
import threading
from pathlib import Path

import pytest
from driver_helpers import PULSER_ENVELOPE, assert_generator_safe, pulser_problems

from drivers._write_guard import POSSIBLY
from drivers.keysight_33500b import Keysight33500B
from drivers.keysight_81160a import Keysight81160A

pytestmark = pytest.mark.timeout(60)

GENERATORS = {"keysight_33522b": Keysight33500B, "keysight_81160a": Keysight81160A}
DRIVERS_DIR = str(Path(__file__).resolve().parents[2] / "drivers")
#: Where a message is sent, held, checked or committed.
WRITE_PATH = frozenset({"exchange", "_exchange", "_send_held", "write_in_messages", "_doubt_until_done",
                        "_refused", "refusals_after_write", "commit", "commit_uncertain", "admit_changes"})
#: Trials per model and transport, spread evenly over the write path's entries in one configuration.
TRIALS = 24
FIRST = dict(amplitude_v=0.5, width_s=50e-9, edge_s=10e-9, period_s=1e-6, count=1)
SECOND = dict(amplitude_v=1.1, width_s=100e-9, edge_s=20e-9, period_s=2e-6, count=3)


class Stop(KeyboardInterrupt):
    """The injected stop signal."""


def _write_path_entry(frame) -> str | None:
    """The name of a write-path function whose entry `frame` is, None for any other: a driver's
    own, or the exit of a context manager a driver's generator makes (where a handler runs before
    the generator resumes, and it stays suspended)."""
    code = frame.f_code
    if code.co_name in WRITE_PATH and code.co_filename.startswith(DRIVERS_DIR):
        return code.co_name
    if code.co_name == "__exit__" and code.co_filename == contextlib.__file__:
        generator = getattr(frame.f_locals.get("self"), "gen", None)
        if generator is not None and generator.gi_code.co_filename.startswith(DRIVERS_DIR):
            return f"{generator.gi_code.co_name} (its exit)"
    return None


def _entries(action) -> list[str]:
    """The write path's function entries while `action` runs, in order."""
    names: list[str] = []

    def trace(frame, event, arg):
        if event == "call" and (name := _write_path_entry(frame)):
            names.append(name)
        return None
    sys.settrace(trace)
    try:
        action()
    finally:
        sys.settrace(None)
    return names


def _stopped_at(index: int, action) -> Stop | None:
    """`action` with Stop raised at its `index`-th write-path entry: the exception, with its
    traceback (alive, as in the handler where a run makes its instruments safe), or None."""
    seen = [0]

    def trace(frame, event, arg):
        if event == "call" and (name := _write_path_entry(frame)):
            seen[0] += 1
            if seen[0] == index:
                sys.settrace(None)
                raise Stop(f"at {name}")
        return None
    sys.settrace(trace)
    try:
        action()
    except Stop as stop:
        return stop
    finally:
        sys.settrace(None)
    return None


def _overconfident(generator, channel) -> list[str]:
    """What the guard takes as known that the instrument does not hold."""
    state, wrong = generator.write_guard.state, []
    levels = state.get(("levels", 1)) or {}
    high_v, low_v = channel.offset_v + channel.amplitude_vpp / 2, channel.offset_v - channel.amplitude_vpp / 2
    for name, value in levels.items():
        truth = {"high": high_v, "low": low_v, "offset": channel.offset_v}.get(name)
        if truth is not None and value is not None and abs(value - truth) > 1e-9:
            if not (name in ("high", "low") and abs(value - (low_v if name == "high" else high_v)) <= 1e-9):
                wrong.append(f"{name} {value} V, the instrument {truth} V")   # (an inverted pulse swaps them)
    output = state.get(("output_on", 1), POSSIBLY)
    if output is not POSSIBLY and bool(output) != bool(channel.output):
        wrong.append(f"output {output}, the instrument {channel.output}")
    return wrong


@pytest.fixture(params=sorted(GENERATORS))
def model(request) -> str:
    return request.param


@pytest.fixture
def bench_models(model) -> dict[str, str]:
    return {"pulser": model}


def test_a_stop_at_any_entry_of_the_write_path_leaves_nothing_unsafe(connect, bench, model):
    generator = connect("pulser", GENERATORS[model], envelope=PULSER_ENVELOPE)
    generator.timeout(0.5)
    device = bench.device("pulser")
    channel = device.channels
    problems: list[str] = []
    commit = device.commit

    def watched_commit(number, settings):          # every state the instrument takes, checked
        commit(number, settings)
        problems.extend(pulser_problems(generator, bench))
    device.commit = watched_commit

    def pulsing() -> None:
        generator.configure_pulse(**FIRST)
        generator.set_output_enabled(True)
    pulsing()
    entries = _entries(lambda: generator.configure_pulse(**SECOND))
    assert len(entries) > 20 and "commit" in entries, entries
    # every entry where a message is sent or committed, and entries spread over the rest
    picks = sorted({index for index, name in enumerate(entries, 1) if name in ("_send_held", "commit")
                    or name.endswith("(its exit)")}
                   | {1 + round(k * (len(entries) - 1) / (TRIALS - 1)) for k in range(TRIALS)})
    failures = []
    for index in picks:
        generator.safe_state()
        pulsing()
        stop = _stopped_at(index, lambda: generator.configure_pulse(**SECOND))
        if stop is None:
            continue
        where = f"stop at entry {index} ({entries[index - 1]})"
        try:
            wrong = _overconfident(generator, channel[1])
            if wrong:
                failures.append(f"{where}: the guard believes {'; '.join(wrong)}")
            if generator._held is not None:
                failures.append(f"{where}: writes left held: {generator._held}")
            free: list[bool] = []

            def take_and_give_back() -> None:
                taken = generator.exchange_lock.acquire(timeout=1.0)
                free.append(taken)
                if taken:
                    generator.exchange_lock.release()
            other = threading.Thread(target=take_and_give_back)
            other.start()
            other.join(5)
            if free != [True]:
                failures.append(f"{where}: the exchange lock is held")
                continue
            generator.safe_state()              # in the handler: the exception is alive
            assert_generator_safe(bench)
        except Exception as error:  # noqa: BLE001 - every trial is reported, not the first only
            failures.append(f"{where}: {type(error).__name__}: {error}")
        finally:
            del stop                            # the handler ends
    assert not problems, f"the instrument outside the envelope, or on with the guard believing it off: {problems[:5]}"
    assert not failures, "\n".join(failures)
    generator.safe_state()
    pulsing()
    generator.configure_pulse(**SECOND)
    assert (channel[1].amplitude_vpp, channel[1].width_s, channel[1].period_s) == pytest.approx(
        (SECOND["amplitude_v"], SECOND["width_s"], SECOND["period_s"]))
