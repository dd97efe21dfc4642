"""Same seed, same run (stations/emulated.yaml: `emulator.seed`), whatever the machine's timing."""

from __future__ import annotations

from pathlib import Path

from sim_backend.emulator import build_bench

STATION = Path(__file__).resolve().parents[2] / "stations" / "emulated.yaml"
#: Lab seconds the stage needs to reach its regulated temperature, with margin.
SETTLED_AFTER_S = 20_000.0


def test_the_chip_sees_one_temperature_however_the_stage_was_brought_up_to_the_present():
    """The emulated stage follows lab time, which follows the wall clock: a slower machine, or a
    process whose solver was loaded before, brings the stage up to the present in other steps.
    At its regulated temperature the stage then differs in its last bits (3.1710526315789473 and
    ...48 K), and a last-bit change of I_sw(T) changes the solver's step decisions: a seeded
    campaign took another path (its refractory period 6.3 ns or none, its f-I gain 1.6e13 or
    1.3e13 Hz/A). The chip must see one temperature."""
    stage_k, chip_k = [], []
    for steps in (1, 7, 40):
        world = build_bench(STATION).world
        for _ in range(steps):
            world.clock.advance(SETTLED_AFTER_S / steps)
            chip_k.append(world.stage_temperature_k())
        stage_k.append(world.temperature_controllers()[0].state.temperature_k)
    assert len(set(stage_k)) > 1, f"the stage's last bits no longer depend on its steps: {stage_k}"
    assert max(stage_k) - min(stage_k) < 1e-12
    assert len({chip_k[0], chip_k[7], chip_k[-1]}) == 1, (stage_k, chip_k[0], chip_k[7], chip_k[-1])
