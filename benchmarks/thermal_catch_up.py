"""Lake Shore catch-up: lab seconds of stage + heater loop simulated per wall second, new vs old.

The emulated temperature controller runs its PID at 10 Hz and the stage's thermal model up to
"now" before every command (F-SIM-1). This times `TemperatureControllerPanel.advance_to` (compiled
kernel) against `advance_to_reference` (the Python path it replaced), on the same scenarios in
the same run, with a catch-up every `--poll` lab seconds (30 lab s = a command every 50 ms of
wall time at 600x). Scenarios (4 K stage, Lake Shore 336 heater ranges, P 50, I 20):

- fsim1: the F-SIM-1 setpoint sequence 7.1 K (0.05 K/min), 1.8 K (4.6 K/min), 1.0 K (2 K/min),
  heater on the medium range, from the stage's base;
- warm: setpoint 10.6 K at 7.1 K/min on the high range: the loop hunts above 7.6 K, where the
  Debye integrals are evaluated (the old path's worst case, ~200 us per step);
- cooldown: from 300 K with the loop on at 4.2 K (output pinned at 0 % most of the way).

Margin = lab s per wall s / 600 (the shipped station's clock): above 1 the bench keeps up.

    .ci/env python benchmarks/thermal_catch_up.py [--seconds 1800] [--poll 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from sim_backend.bench.temperature_controller import HeaterOutput, SensorInput, TemperatureControllerPanel
from sim_backend.physics import thermal

CLOCK_ACCELERATION = 600.0
RANGES_W = (0.0, 1.0, 10.0, 100.0)       # the 336's output 1 at 2 A into 25 ohm: 1 %, 10 %, 100 %


def panel(start_k: float, range_index: int) -> TemperatureControllerPanel:
    return TemperatureControllerPanel(
        stage=thermal.STAGE_4K, state=thermal.ThermalState(temperature_k=start_k), range_powers_w=RANGES_W,
        inputs={"A": SensorInput()},
        outputs={1: HeaterOutput(mode="closed_loop", range_index=range_index, p=50.0, i=20.0)})


def setpoint(controller: TemperatureControllerPanel, setpoint_k: float, ramp_k_per_min: float) -> None:
    heater = controller.outputs[1]
    heater.ramp_enabled, heater.ramp_rate_k_per_min = True, ramp_k_per_min
    if heater.ramping_setpoint_k is None:
        heater.ramping_setpoint_k = controller.state.temperature_k
    controller.set_setpoint(1, setpoint_k)


def scenario(name: str, span_s: float):
    """(fresh controller, [(lab time, setpoint K, ramp K/min)]) for a scenario."""
    base_k = thermal.equilibrium_temperature_k(thermal.STAGE_4K, 0.0)
    if name == "fsim1":
        return panel(base_k, 2), [(0.0, 7.1, 0.05), (span_s / 3, 1.8, 4.6), (2 * span_s / 3, 1.0, 2.0)]
    if name == "warm":
        return panel(base_k, 3), [(0.0, 10.6, 7.1)]
    if name == "cooldown":
        return panel(300.0, 2), [(0.0, 4.2, 5.0)]
    raise ValueError(name)


def run(name: str, span_s: float, poll_s: float, reference: bool) -> tuple[float, float, int]:
    """(wall s, final temperature K, control steps) catching up every poll_s lab seconds."""
    controller, changes = scenario(name, span_s)
    advance = controller.advance_to_reference if reference else controller.advance_to
    pending = list(changes)
    now_s, wall_s = 0.0, 0.0
    while now_s < span_s:
        while pending and pending[0][0] <= now_s:
            _, setpoint_k, ramp = pending.pop(0)
            setpoint(controller, setpoint_k, ramp)
        now_s = min(now_s + poll_s, span_s)
        t0 = time.perf_counter()
        advance(now_s)
        wall_s += time.perf_counter() - t0
    return wall_s, controller.state.temperature_k, round(span_s / controller.control_interval_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1800.0, help="lab seconds per scenario")
    parser.add_argument("--poll", type=float, default=30.0, help="lab seconds between catch-ups")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    run("warm", 10.0, args.poll, reference=False)          # compile (or load) the kernel first
    rows, summary = [], {}
    for name in ("fsim1", "warm", "cooldown"):
        old, new = [], []
        for _ in range(args.repeats):                       # ABAB: neither path always runs second
            old.append(run(name, args.seconds, args.poll, reference=True))
            new.append(run(name, args.seconds, args.poll, reference=False))
        old_wall = statistics.median(w for w, _, _ in old)
        new_wall = statistics.median(w for w, _, _ in new)
        steps = old[0][2]
        old_rate, new_rate = args.seconds / old_wall, args.seconds / new_wall
        d_t = abs(old[0][1] - new[0][1])
        rows.append((name, old_wall / steps * 1e6, new_wall / steps * 1e6, old_rate, new_rate, d_t))
        summary[name] = {"old_lab_s_per_wall_s": round(old_rate, 1), "new_lab_s_per_wall_s": round(new_rate, 1),
                         "ratio": round(new_rate / old_rate, 1),
                         "old_us_per_step": round(old_wall / steps * 1e6, 2),
                         "new_us_per_step": round(new_wall / steps * 1e6, 3),
                         "old_margin_vs_600x": round(old_rate / CLOCK_ACCELERATION, 2),
                         "new_margin_vs_600x": round(new_rate / CLOCK_ACCELERATION, 1),
                         "final_temperature_difference_k": d_t}

    print(f"{args.seconds:.0f} lab s per scenario, a catch-up every {args.poll:g} lab s, median of {args.repeats}")
    print(f"{'scenario':10s} {'old us/step':>12s} {'new us/step':>12s} {'old lab s/s':>12s} {'new lab s/s':>12s} "
          f"{'ratio':>8s} {'old margin':>11s} {'new margin':>11s} {'|dT| end':>9s}")
    for name, old_us, new_us, old_rate, new_rate, d_t in rows:
        print(f"{name:10s} {old_us:12.1f} {new_us:12.2f} {old_rate:12.0f} {new_rate:12.0f} {new_rate / old_rate:7.0f}x "
              f"{old_rate / CLOCK_ACCELERATION:10.2f}x {new_rate / CLOCK_ACCELERATION:10.0f}x {d_t:9.1e}")
    worst_new = min(s["new_lab_s_per_wall_s"] for s in summary.values())
    worst_old = min(s["old_lab_s_per_wall_s"] for s in summary.values())
    print(json.dumps({"benchmark": "thermal_catch_up", "lab_s_per_scenario": args.seconds, "poll_lab_s": args.poll,
                      "clock_acceleration": CLOCK_ACCELERATION, "scenarios": summary,
                      "worst_margin_vs_600x": {"old": round(worst_old / CLOCK_ACCELERATION, 2),
                                               "new": round(worst_new / CLOCK_ACCELERATION, 1)},
                      "keeps_up_at_600x": {"old": worst_old > CLOCK_ACCELERATION,
                                           "new": worst_new > CLOCK_ACCELERATION}}))


if __name__ == "__main__":
    main()
