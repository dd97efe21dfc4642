"""Cryostat stage thermal model: base, power balance, cooldown time, large-dt stability, energy."""

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim_backend.physics import thermal
from sim_backend.physics.thermal import STAGE_2K, STAGE_4K, STAGE_MXC, ThermalState

STAGES = pytest.mark.parametrize("params", [STAGE_4K, STAGE_2K, STAGE_MXC], ids=["4K", "2K", "mK"])


def settle(params, heater_w, start_k, duration_s=20 * 3600.0):
    return thermal.step(ThermalState(start_k), params, heater_w, duration_s).temperature_k


def test_base_temperature_4k_stage():
    base = settle(STAGE_4K, 0.0, 300.0)
    assert 2.8 < base < 4.2  # below the 1 W-at-4.2 K point: the parasitic load is < 1 W
    assert base == pytest.approx(thermal.equilibrium_temperature_k(STAGE_4K, 0.0), rel=1e-6)


def test_base_temperature_mixing_chamber():
    base = settle(STAGE_MXC, 0.0, 0.1)
    assert 0.010 <= base <= 0.020
    assert 1e-6 <= STAGE_MXC.cooler.power_w(0.020) <= 10e-6  # ~uW at 20 mK


@STAGES
def test_equilibrium_is_monotone_and_balances_power(params):
    scale = 1.0 if params is STAGE_4K else 1e-6
    powers = [0.0, 0.1 * scale, 0.3 * scale, 1.0 * scale, 3.0 * scale]
    temps = [thermal.equilibrium_temperature_k(params, p) for p in powers]
    assert all(b > a for a, b in zip(temps, temps[1:]))
    for p, t in zip(powers, temps):
        removed = params.cooler.power_w(t)
        assert removed == pytest.approx(p + params.parasitic_w, rel=1e-9, abs=1e-15)
        # The time integration reaches the same point from above and from below.
        assert settle(params, p, 0.5 * t) == pytest.approx(t, rel=1e-4)
        assert settle(params, p, 1.5 * t) == pytest.approx(t, rel=1e-4)


def test_cooldown_from_room_temperature_takes_hours():
    hours = thermal.cooldown_time_s(STAGE_4K, 300.0, 4.5) / 3600.0
    assert 2.0 <= hours <= 6.0
    # Most of the time is spent warm, where copper's heat capacity is large.
    to_77 = thermal.cooldown_time_s(STAGE_4K, 300.0, 77.0) / 3600.0
    assert 0.4 * hours < to_77 < hours


@pytest.mark.parametrize(
    ("params", "heater_w", "start_k"),
    [(STAGE_4K, 0.0, 300.0), (STAGE_4K, 0.5, 3.2), (STAGE_4K, 0.0, 20.0), (STAGE_MXC, 2e-6, 0.012)],
)
def test_one_hour_step_matches_many_small_steps(params, heater_w, start_k):
    big = thermal.step(ThermalState(start_k), params, heater_w, 3600.0)
    small = ThermalState(start_k)
    for _ in range(3600):
        small = thermal.step(small, params, heater_w, 1.0)
    assert big.temperature_k == pytest.approx(small.temperature_k, rel=5e-3)
    assert big.time_s == pytest.approx(small.time_s)
    assert big.cooling_energy_j == pytest.approx(small.cooling_energy_j, rel=5e-3)


def test_huge_step_is_stable_and_lands_on_equilibrium():
    # A stiff case: seconds-scale time constant at base, a one-week step.
    state = thermal.step(ThermalState(3.2), STAGE_4K, 0.8, 7 * 24 * 3600.0)
    assert math.isfinite(state.temperature_k)
    assert state.temperature_k == pytest.approx(thermal.equilibrium_temperature_k(STAGE_4K, 0.8), rel=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    start_k=st.floats(3.5, 300.0),
    heater_w=st.floats(0.0, 5.0),
    dt_s=st.floats(1e-3, 1e5),
)
def test_integrator_conserves_energy(start_k, heater_w, dt_s):
    before = ThermalState(start_k)
    after = thermal.step(before, STAGE_4K, heater_w, dt_s)
    stored = thermal.enthalpy_j(STAGE_4K, after.temperature_k) - thermal.enthalpy_j(STAGE_4K, start_k)
    supplied = after.heater_energy_j + after.parasitic_energy_j - after.cooling_energy_j
    assert after.heater_energy_j == pytest.approx(heater_w * dt_s)
    # Flows can nearly cancel at equilibrium: judge the residual against the gross energies.
    gross = after.heater_energy_j + after.parasitic_energy_j + after.cooling_energy_j
    gross += thermal.enthalpy_j(STAGE_4K, start_k)
    assert abs(stored - supplied) <= 1e-9 * gross


@STAGES
def test_a_stage_at_rest_stays_where_the_full_integration_leaves_it(params):
    """At equilibrium `step` books time and energy without integrating (a stage at base drifts
    once per reading); where it does so the full backward-Euler path agrees to AT_REST_K."""
    scale = 1.0 if params is STAGE_4K else 1e-6
    at_rest = thermal.step(ThermalState(1.2 * thermal.equilibrium_temperature_k(params, 0.3 * scale)),
                           params, 0.3 * scale, 7 * 24 * 3600.0)
    for dt_s in (0.5, 30.0, 600.0):
        kept = thermal.step(at_rest, params, 0.3 * scale, dt_s)
        full_k, cooled_j = thermal._backward_euler(params, at_rest.temperature_k, 0.3 * scale + params.parasitic_w,
                                                   dt_s, True)
        rate_k_per_s = (0.3 * scale + params.parasitic_w - params.cooler.power_w(at_rest.temperature_k)) \
            / thermal.heat_capacity_j_per_k(params, at_rest.temperature_k)
        assert abs(rate_k_per_s) * dt_s <= thermal.AT_REST_K, "the stage is not at rest: the test shows nothing"
        assert abs(kept.temperature_k - full_k) <= thermal.AT_REST_K
        assert kept.cooling_energy_j - at_rest.cooling_energy_j == pytest.approx(cooled_j, rel=1e-9)
        assert kept.time_s == at_rest.time_s + dt_s
    # Off equilibrium it integrates: a warmer stage cools in the same call.
    warm = thermal.step(dataclasses.replace(at_rest, temperature_k=1.01 * at_rest.temperature_k),
                        params, 0.3 * scale, 30.0)
    assert warm.temperature_k < 1.01 * at_rest.temperature_k


def test_enthalpy_is_integral_of_heat_capacity():
    for t in (0.01, 1.0, 10.0, 40.0, 120.0, 290.0):
        d = 1e-4 * t
        slope = (thermal.enthalpy_j(STAGE_4K, t + d) - thermal.enthalpy_j(STAGE_4K, t - d)) / (2 * d)
        assert slope == pytest.approx(thermal.heat_capacity_j_per_k(STAGE_4K, t), rel=1e-6)


def test_heat_capacity_limits_of_copper():
    moles = STAGE_4K.moles
    # Room temperature: measured c_p of copper is 24.44 J/(mol K) at 298 K (CRC Handbook); the
    # harmonic Debye model sits a few % below it (no anharmonic or Cp-Cv term).
    assert thermal.heat_capacity_j_per_k(STAGE_4K, 298.0) / moles == pytest.approx(24.44, rel=0.05)
    # Low-T: gamma*T + (12 pi^4/5) R (T/Theta)^3.
    t = 2.0
    expected = 0.695e-3 * t + 12 * math.pi**4 / 5 * 8.314462618 * (t / 343.0) ** 3
    assert thermal.heat_capacity_j_per_k(STAGE_4K, t) / moles == pytest.approx(expected, rel=1e-6)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        thermal.step(ThermalState(4.0), STAGE_4K, 0.0, -1.0)
    with pytest.raises(ValueError):
        thermal.step(ThermalState(4.0), STAGE_4K, -0.1, 1.0)
    with pytest.raises(ValueError):
        thermal.TabulatedCooler((3.0, 2.0), (0.0, 1.0))
    with pytest.raises(ValueError):
        thermal.cooldown_time_s(STAGE_4K, 300.0, 2.0)
