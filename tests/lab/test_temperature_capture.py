"""The temperature guard's min/max capture on the emulated station, real drivers throughout.

A fridge excursion that begins and ends inside one long bias sweep: the readings before and
after the sweep find the stage back in its window, only the controller's own min/max capture
saw it. The excursion is placed by the test itself, on the emulated controller's panel, at the
moment the run starts its first long sweep (the guard has reset the capture and read the stage by
then), so where it falls does not depend on how fast the machine is: the heat goes in 5 lab s
after the sweep starts and the stage is back ~50 lab s later, while that sweep lasts several
hundred lab s (several seconds of wall time at the station's 600x).

On the Lake Shore 336 the run catches it, sits it out and takes the sweep again; on the Lake
Shore 372, which keeps no capture, the same excursion passes unseen, and the run's record says
that the readings were all it had.
"""

from __future__ import annotations

import re

import pytest
import yaml

from contracts.files.station import read_station
from lab.app.campaign import chip_design
from lab.execution.instruments import open_instruments
from lab.execution.runner import Runner
from procedures.iv_sweep import IvSweep
from sim_backend import emulator
from sim_backend.physics import thermal

#: A short iv_sweep (a few seconds of wall time) whose search sweep has ~600 levels.
PARAMETERS = dict(switching_events=20, search_sweeps=5)
#: Sweeps with at least this many levels last hundreds of lab seconds at 600x.
LONG_SWEEP_LEVELS = 300
EXCURSION_W, EXCURSION_START_S, EXCURSION_S = 2.0, 5.0, 30.0


def _with_372(path) -> None:
    """The station's temperature controller becomes a Lake Shore 372 on the same 4 K stage."""
    tree = yaml.safe_load(path.read_text())
    cryostat = tree["instruments"]["cryostat"]
    cryostat["driver"] = "drivers.lakeshore_372.Lakeshore372"
    cryostat["options"] = {"sensor_input": 6}
    cryostat["emulator"]["model"] = "lakeshore_372"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))


def _run_with_an_excursion_inside_a_long_sweep(path):
    """iv_sweep on the station at `path`, with a fridge excursion placed inside its first long
    sweep; (outcome, the levels of every sweep in order, the highest stage temperature the
    emulated controller's panel went through since the bench started)."""
    station = read_station(path)
    library = station.instruments["cryostat"].visalib.rsplit("@", 1)[0]
    sweeps: list[tuple[float, ...]] = []
    placed: list[tuple[float, float]] = []
    try:
        with open_instruments(station) as instruments:
            bias = instruments.roles["bias_source"]
            world = emulator.open_bench(library).world
            sweep = bias.sweep_current_a

            def sweep_with_an_excursion(levels_a, *, dwell_s):
                sweeps.append(tuple(float(level_a) for level_a in levels_a))
                if not placed and len(levels_a) >= LONG_SWEEP_LEVELS:
                    start_s = world.now_s() + EXCURSION_START_S
                    placed.append((start_s, start_s + EXCURSION_S))
                    world.panels["cryostat"].excursions.append((*placed[0], EXCURSION_W))
                return sweep(levels_a, dwell_s=dwell_s)

            bias.sweep_current_a = sweep_with_an_excursion
            outcome = Runner(station, instruments.roles, archive_dir=path.parent / "out", snapshot=instruments.snapshot,
                             chip_design=chip_design(station), show_progress=False).run(IvSweep(**PARAMETERS))
            panel = world.panels["cryostat"]
            panel.advance_to(world.now_s())
            # the panel's own record of the stage (the 372 personality has no command to reset it)
            highest_k = max(sensor.highest_k for sensor in panel.inputs.values())
    finally:
        emulator.close_bench(library)
    assert placed, f"no sweep of {LONG_SWEEP_LEVELS}+ levels to place the excursion in: {_counts(sweeps)}"
    return outcome, sweeps, highest_k


def _counts(sweeps) -> list[int]:
    return [len(levels) for levels in sweeps]


def _first_long_sweep(sweeps) -> int:
    """Index of the sweep the excursion was placed in."""
    return next(k for k, levels in enumerate(sweeps) if len(levels) >= LONG_SWEEP_LEVELS)


@pytest.mark.timeout(120)
def test_an_excursion_inside_one_sweep_is_caught_by_the_336s_min_max_capture(private_station):
    outcome, sweeps, _ = _run_with_an_excursion_inside_a_long_sweep(private_station)
    assert outcome.exit_status == "completed", outcome.message
    found = re.fullmatch(r"stage at (?P<k>[\d.]+) K during the SweepBias \(the highest temperature of the "
                         r"controller's min/max capture, caught by it\) left its "
                         r"window \[2, 4.5\] K: bias at 0 A and input off for \d+ s of lab time until it was back "
                         r"\([\d.]+ K\); the SweepBias taken meanwhile discarded and taken again", outcome.message)
    assert found, outcome.message
    # the stage sat where 2 W hold it (and was back inside by the sweep's end: the 372's run
    # below, guarded by readings alone, lets the same excursion pass)
    assert float(found["k"]) == pytest.approx(thermal.equilibrium_temperature_k(thermal.STAGE_4K, EXCURSION_W),
                                              abs=0.01)
    # the long sweep was taken again (the same levels), at once after the excursion was sat out
    placed_in = _first_long_sweep(sweeps)
    assert sweeps[placed_in + 1] == sweeps[placed_in], _counts(sweeps)


@pytest.mark.timeout(120)
def test_the_372_has_no_capture_so_the_same_excursion_passes_and_the_record_says_why(private_station):
    _with_372(private_station)
    outcome, sweeps, highest_k = _run_with_an_excursion_inside_a_long_sweep(private_station)
    assert outcome.exit_status == "completed", outcome.message
    # the stage did go where 2 W hold it, during the sweep ...
    assert highest_k == pytest.approx(thermal.equilibrium_temperature_k(thermal.STAGE_4K, EXCURSION_W), abs=0.01)
    # ... and the run, with readings only, did not see it: it says so, and nothing else
    assert outcome.message == (
        "no min/max capture around the measurements (the Lake Shore 372 driver has no min/max capture to use (the "
        "372 manual lists the 370's MNMX among the commands it no longer supports)): the stage is read before and "
        "after each measurement only, so an excursion that begins and ends within one is not seen")
    placed_in = _first_long_sweep(sweeps)
    assert sweeps[placed_in + 1] != sweeps[placed_in], _counts(sweeps)   # not taken again
