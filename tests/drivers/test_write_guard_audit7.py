"""An eighth audit of the write guard: what a pulse generator or a scope is left doing by settings
the driver never writes (set at the front panel before the session, or while the link was down),
and by headers no rule names.

Real drivers, both transports (in-process and TCP), the emulated bench, as
test_write_guard_audit.py; each test asserts what the instrument must stay inside.
"""

from __future__ import annotations

import pytest
from driver_helpers import PULSER_ENVELOPE, faults_of, pulser_problems, send

from drivers.keysight_33500b import Keysight33500B
from drivers.keysight_81160a import Keysight81160A

pytestmark = pytest.mark.timeout(60)

#: model -> (emulator model, driver, the pulse hold as a person sets it at the panel, a period header)
GENERATORS = {"81160a": ("keysight_81160a", Keysight81160A, ":PULS:HOLD1 DCYC", ":PULS:PER1"),
              "33522b": ("keysight_33522b", Keysight33500B, ":SOUR1:FUNC:PULS:HOLD DCYC", ":SOUR1:FUNC:PULS:PER")}

per_generator = pytest.mark.parametrize("generator_model", sorted(GENERATORS))


def _pulsing(connect, generator_model: str):
    """A generator putting out 50 ns pulses of 0.5 V every 1 us, output on."""
    generator = connect("pulser", GENERATORS[generator_model][1], envelope=PULSER_ENVELOPE)
    generator.configure_pulse(amplitude_v=0.5, width_s=50e-9, edge_s=10e-9, period_s=1e-6, count=1)
    generator.set_output_enabled(True)
    return generator


class TestAPulseHeldByItsDutyCycle:
    """A pulse held by its duty cycle (`PULSe:HOLD DCYCle`, which the guard refuses from the
    driver) set at the front panel: a later period keeps the duty cycle, not the width, and
    stretches the pulse past `pulse_width_max_s` with no width written."""

    @pytest.fixture
    def bench_models(self, generator_model) -> dict[str, str]:
        return {"pulser": GENERATORS[generator_model][0]}

    @per_generator
    def test_a_hold_set_before_the_session(self, connect, bench, generator_model):
        """HOLD DCYC at the panel, then configure_pulse (50 ns every 1 us), output on, then the
        driver's own `pulse_period` parameter set to 100 us: the instrument keeps 5 % and puts out
        5 us pulses (limit 1 us)."""
        bench.device("pulser").write_bytes(f"{GENERATORS[generator_model][2]}\n".encode())
        generator = _pulsing(connect, generator_model)
        outcomes = [send(generator, f"{GENERATORS[generator_model][3]} 1e-4")]
        generator.ask("*OPC?")
        problems = pulser_problems(generator, bench)
        assert not problems, (outcomes, problems)

    @per_generator
    def test_a_hold_set_while_the_link_was_down(self, connect, bench, generator_model):
        """Pulsing; the link drops and HOLD DCYC is set at the panel meanwhile; the driver
        reconnects and re-applies its configuration; then the period is set to 100 us: 5 us pulses."""
        from sim_backend.faults.plan import drop

        generator = _pulsing(connect, generator_model)
        bench.device("pulser").write_bytes(f"{GENERATORS[generator_model][2]}\n".encode())
        faults_of(bench, "pulser").inject(drop())
        generator.ask("*OPC?")                                 # dropped, reconnected, asked again
        outcomes = [send(generator, f"{GENERATORS[generator_model][3]} 1e-4")]
        generator.ask("*OPC?")
        problems = pulser_problems(generator, bench)
        assert not problems, (outcomes, problems)

    @per_generator
    def test_a_hold_set_before_the_session_with_raw_writes(self, connect, bench, generator_model):
        """HOLD DCYC at the panel; the pulse set up by raw writes alone (width, levels, load, output
        on: nothing writes the hold), then a period of 100 us: 5 us pulses."""
        _, driver, hold, period = GENERATORS[generator_model]
        bench.device("pulser").write_bytes(f"{hold}\n".encode())
        generator = connect("pulser", driver, envelope=PULSER_ENVELOPE)
        prefix, output = (":SOUR1", ":OUTP1") if generator_model == "33522b" else ("", ":OUTP1")
        function, width = ((f"{prefix}:FUNC PULS", f"{prefix}:FUNC:PULS:WIDT 5e-8") if generator_model == "33522b"
                           else (":FUNC1 PULS", ":PULS:WIDT1 5e-8"))
        levels = ":SOUR1:VOLT" if generator_model == "33522b" else ":VOLT1"
        outcomes = [send(generator, message) for message in (
            f"{output}:LOAD 50", function, f"{period} 1e-6", width, f"{levels}:HIGH 0.5", f"{levels}:LOW 0",
            f"{output} ON", f"{period} 1e-4")]
        generator.ask("*OPC?")
        problems = pulser_problems(generator, bench)
        assert not problems, (outcomes, problems)


class TestCoupledChannels:
    """The 81160A's channel coupling (`:TRACe:CHANnel1 ON`) runs channel 2 at channel 1's
    frequency: a period set on channel 2 by a header that names no period."""

    @pytest.fixture
    def bench_models(self) -> dict[str, str]:
        return {"pulser": "keysight_81160a"}

    def test_coupling_stretches_a_pulse_held_by_its_duty_cycle(self, connect, bench):
        """Channel 1 pulsing every 100 us; channel 2 (HOLD DCYC at the panel) 50 ns every 1 us, on;
        `:TRAC:CHAN1 ON`: channel 2 at 100 us keeps 5 %, 5 us pulses (limit 1 us)."""
        bench.device("pulser").write_bytes(b":PULS:HOLD2 DCYC\n")
        generator = connect("pulser", Keysight81160A, envelope=PULSER_ENVELOPE)
        generator.configure_pulse(amplitude_v=0.5, width_s=50e-9, edge_s=10e-9, period_s=1e-4, count=1)
        outcomes = [send(generator, message) for message in (
            ":OUTP2:LOAD 50", ":FUNC2 PULS", ":PULS:PER2 1e-6", ":PULS:WIDT2 5e-8", ":VOLT2:HIGH 0.5",
            ":VOLT2:LOW 0", ":OUTP2 ON", ":TRAC:CHAN1 ON")]
        generator.ask("*OPC?")
        problems = pulser_problems(generator, bench)
        assert not problems, (outcomes, problems)


# --------------------------------------------------------------------------- scopes

SCOPES = {"keysight_infiniium": ("drivers.keysight_infiniium", "KeysightInfiniium"),
          "tektronix_dpo7254": ("drivers.tektronix_dpo", "TektronixDPO")}


class TestAScopeReset:
    """A scope's `*RST` puts every channel back to its default range (Infiniium 0.8 V full scale,
    Tektronix 100 mV/div: 1 V on the screen, 1.024 V at the ADC): no scope rule names it, so it
    passed whatever the station's `input_range_max_v`."""

    @pytest.fixture
    def bench_models(self, scope_model) -> dict[str, str]:
        return {"scope": scope_model}

    @pytest.mark.parametrize("scope_model", sorted(SCOPES))
    def test_a_reset_sets_the_default_range(self, connect, bench, scope_model):
        """Input ranges limited to 0.5 V; the acquisition's channels at 0.4 V; then `*RST`: 0.8 V
        (Infiniium), 1 V (Tektronix) on those channels."""
        import importlib

        from contracts.envelope import Envelope

        limit_v = 0.5
        module, name = SCOPES[scope_model]
        scope = connect("scope", getattr(importlib.import_module(module), name),
                        envelope=Envelope("oscilloscope", {"input_range_max_v": limit_v}))
        scope.configure_acquisition(channel_ranges_v={1: 0.4, 2: 0.4}, record_length=1000, sample_rate_hz=1e9,
                                    pretrigger_s=1e-7, trigger_channel=2, trigger_level_v=0.05)
        outcome = send(scope, "*RST")
        scope.ask("*OPC?")
        ranges = {n: bench.world.panels["scope"].channels[n].range_v for n in (1, 2)}
        assert max(ranges.values()) <= limit_v, (outcome, f"full-scale ranges {ranges} V, limit {limit_v} V")
