"""A stop signal (Ctrl-C, a SIGTERM turned into an exception) handled at a function entry on a
generator's write path, in the middle of a pulse configuration, or anywhere in the reconnect that
follows a dropped link, wherever it lands.

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

In a reconnect the stop lands at entries of the drivers' code and of pyvisa's and pyvisa-py's (the
client a driver reopens its session through): a stop as pyvisa set the new session's read
termination once left a session with pyvisa's default, which every later reopen copied, so no
identification was ever read back and the safe state never reached the instrument (over TCP).

Real drivers, the emulated bench, both transports."""

from __future__ import annotations

import pytest
from driver_helpers import PULSER_ENVELOPE, assert_generator_safe, pulser_problems, station_address
from stop_points import (DRIVERS_DIR, entries_during, generator_exit_entry, in_the_way, stopped_at,
                         stops_in_the_reconnect)

from drivers._write_guard import POSSIBLY
from drivers.keysight_33500b import Keysight33500B
from drivers.keysight_81160a import Keysight81160A
from sim_backend.faults.plan import drop

pytestmark = pytest.mark.timeout(60)

GENERATORS = {"keysight_33522b": Keysight33500B, "keysight_81160a": Keysight81160A}
#: Where a message is sent, held, checked or committed.
WRITE_PATH = frozenset({"exchange", "_exchange", "_send_held", "write_in_messages", "_doubt_until_done",
                        "_refused", "refusals_after_write", "commit", "commit_uncertain", "admit_changes"})
#: Trials per model and transport, spread evenly over the write path's entries in one configuration.
TRIALS = 24
FIRST = dict(amplitude_v=0.5, width_s=50e-9, edge_s=10e-9, period_s=1e-6, count=1)
SECOND = dict(amplitude_v=1.1, width_s=100e-9, edge_s=20e-9, period_s=2e-6, count=3)


def _write_path_entry(frame) -> str | None:
    """The name of a write-path function whose entry `frame` is, None for any other: a driver's
    own, or the exit of a context manager a driver's generator makes."""
    code = frame.f_code
    if code.co_name in WRITE_PATH and code.co_filename.startswith(DRIVERS_DIR):
        return code.co_name
    return generator_exit_entry(frame)


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


def _watched(generator, bench) -> list[str]:
    """The problems `pulser_problems` finds at every state the emulated generator takes from now on."""
    device = bench.device("pulser")
    problems: list[str] = []
    commit = device.commit

    def watched_commit(number, settings):
        commit(number, settings)
        problems.extend(pulser_problems(generator, bench))
    device.commit = watched_commit
    return problems


def _left_safe(generator, bench, where: str) -> list[str]:
    """What is wrong after a stop ended a call, the exception still alive: a guard more confident
    than the instrument allows, a safe state that fails or leaves the generator anything but off
    at 0 V DC."""
    wrong = _overconfident(generator, bench.device("pulser").channels[1])
    failures = [f"{where}: the guard believes {'; '.join(wrong)}"] if wrong else []
    try:
        generator.safe_state()              # in the handler: the exception is alive
        assert_generator_safe(bench)
    except Exception as error:  # noqa: BLE001 - every trial is reported, not the first only
        failures.append(f"{where}: {type(error).__name__}: {error}")
    return failures


def _pulsing(generator) -> None:
    generator.configure_pulse(**FIRST)
    generator.set_output_enabled(True)


def _configures_exactly(generator, bench) -> None:
    generator.safe_state()
    _pulsing(generator)
    generator.configure_pulse(**SECOND)
    channel = bench.device("pulser").channels[1]
    assert (channel.amplitude_vpp, channel.width_s, channel.period_s) == pytest.approx(
        (SECOND["amplitude_v"], SECOND["width_s"], SECOND["period_s"]))


def test_a_stop_at_any_entry_of_the_write_path_leaves_nothing_unsafe(connect, bench, model):
    generator = connect("pulser", GENERATORS[model], envelope=PULSER_ENVELOPE)
    generator.timeout(0.5)
    problems = _watched(generator, bench)
    _pulsing(generator)
    entries, _ = entries_during(lambda: generator.configure_pulse(**SECOND), _write_path_entry)
    assert len(entries) > 20 and "commit" in entries, entries
    # every entry where a message is sent or committed, and entries spread over the rest
    picks = sorted({index for index, name in enumerate(entries, 1) if name in ("_send_held", "commit")
                    or name.endswith("(its exit)")}
                   | {1 + round(k * (len(entries) - 1) / (TRIALS - 1)) for k in range(TRIALS)})
    failures = []
    for index in picks:
        generator.safe_state()
        _pulsing(generator)
        stop = stopped_at(index, lambda: generator.configure_pulse(**SECOND), _write_path_entry)
        if stop is not None:
            where = f"stop at entry {index} ({entries[index - 1]})"
            failures += in_the_way(generator, where) or _left_safe(generator, bench, where)
            del stop                        # the handler ends
    assert not problems, f"the instrument outside the envelope, or on with the guard believing it off: {problems[:5]}"
    assert not failures, "\n".join(failures)
    _configures_exactly(generator, bench)


#: Trials per model and transport spread over the rest of a reconnect's entries.
RECONNECT_TRIALS = 24


# A stop inside pyvisa's Resource.__init__ leaves a half-built resource whose __del__ fails (pyvisa's own).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_stop_anywhere_in_a_reconnect_leaves_nothing_unsafe(connect, bench, model):
    """The link drops at a pulse configuration's first reply; the stop lands at an entry of the
    drivers' or pyvisa's code while the reconnect that follows runs (reopening, the old session's
    check over TCP, the role settings written again). Each trial as above, then the next configuration is
    exact: no connection is left dead or out of step."""
    generator = connect("pulser", GENERATORS[model], envelope=PULSER_ENVELOPE)
    generator.timeout(0.5)
    faults = bench.faults_for(station_address(bench, "pulser"))
    problems = _watched(generator, bench)

    def dropped_at_the_first_reply() -> None:
        faults.inject(drop())
        generator.configure_pulse(**SECOND)
    _pulsing(generator)
    failures = stops_in_the_reconnect(generator, faults, dropped_at_the_first_reply,
                                      prepare=lambda: _pulsing(generator), spread=RECONNECT_TRIALS,
                                      left_safe=lambda where: _left_safe(generator, bench, where),
                                      follow=lambda: _configures_exactly(generator, bench))
    assert not problems, f"the instrument outside the envelope, or on with the guard believing it off: {problems[:5]}"
    assert not failures, "\n".join(failures)
