"""A tenth audit of the write guard: the 2450's trigger-model blocks written after the driver set its
list sweep, its output-off state, terminals, power-on setup and command language, a function reply
garbled in its safe state; a Lake Shore's curve headers, deleted curves and SoftCal, the 372's
scanner, and heater outputs left heating at the front panel when a run sets its setpoint.

Real drivers, both transports (in-process and TCP), the emulated bench; each test asserts what the
instrument must stay inside, or, where the emulator does not model a command, that the driver's
write path refuses it with EnvelopeError before anything reaches the instrument.
"""

from __future__ import annotations

import time

import pytest
from driver_helpers import ENVELOPES, enveloped_smu, send

from drivers.keithley_2450 import Keithley2450
from drivers.lakeshore_336 import Lakeshore336
from drivers.lakeshore_372 import Lakeshore372

pytestmark = pytest.mark.timeout(60)

#: A list sweep the driver checks and sets: 1 uA steps over a 20 ms dwell (50 uA/s; the limit is 100 uA/s).
SWEEP_A, DWELL_S = [1e-6, 2e-6, 1e-6, 0.0], 0.02


# --------------------------------------------------------------------------- Keithley 2450

class TestKeithley2450:
    @pytest.fixture
    def bench_models(self) -> dict[str, str]:
        return {}

    @staticmethod
    def _swept(connect):
        """A driver whose list sweep ran once: the sweep stays set, and `:INIT` would play it again."""
        driver = enveloped_smu(connect)
        driver.set_output_enabled(True)
        driver.sweep_current_a(SWEEP_A, dwell_s=DWELL_S)
        return driver

    def test_init_plays_the_sweep_the_driver_set(self, connect, bench):
        """The control case: with the trigger model as the sweep left it, `:INIT` is let through
        once its first step keeps to the ramp limit from the level the sweep left (the emulated
        2450 plays a sweep in its accelerated lab time; a real one answers *OPC? a dwell later)."""
        driver = self._swept(connect)
        time.sleep(driver.sweep_first_wait_s(SWEEP_A[0]))
        assert send(driver, ":INIT") == "sent"
        driver.ask("*OPC?")

    @pytest.mark.parametrize("block", [
        ":TRIG:BLOC:DEL:CONS 5, 0",              # the dwell the sweep was checked at, gone
        ":TRIG:BLOC:BRAN:ALW 9, 2",              # the levels played again and again
        ":TRIG:BLOC:BRAN:COUN 9, 100, 2",
        ":TRIG:BLOC:SOUR:STAT 3, ON",            # a block switching the output on
        ":TRIGGER:BLOCK:NOP 4",
    ])
    def test_a_trigger_block_after_the_sweep_was_set_takes_init_with_it(self, connect, bench, received, block):
        """The list sweep set (the guard checked its steps against the ramp limit over its dwell),
        then one block of the trigger model it built rewritten: a delay block shortened to 0 s
        steps through the levels as fast as the source can, a branch repeats them, a source block
        switches the output on. `:INIT` was let through, since the sweep was still recorded as
        set; the emulator has no blocks (-113), so what is shown is the write path: `:INIT` is
        refused and does not reach the instrument."""
        driver = self._swept(connect)
        log = received("bias")
        outcomes = [send(driver, block), send(driver, ":INIT")]
        driver.ask("*OPC?")
        assert outcomes[1].startswith("refused") and ":INIT" not in log.messages, (outcomes, log.messages)

    def test_a_trigger_block_in_one_message_with_the_sweep_and_init(self, connect, bench, received):
        """The same in one message: the sweep set, a block changed, `:INIT`."""
        driver = self._swept(connect)
        log = received("bias")
        outcome = send(driver, f':SOUR:SWE:CURR:LIST 1, {DWELL_S}, 1, OFF, "defbuffer1";:TRIG:BLOC:DEL:CONS 5, 0;'
                               ':INIT')
        driver.ask("*OPC?")
        assert outcome.startswith("refused") and not any("INIT" in m for m in log.messages), (outcome, log.messages)

    @pytest.mark.parametrize("message", [":OUTP:SMOD ZERO", ":OUTPut1:SMODe zero", ":OUTP:SMOD ZERO;:OUTP OFF"])
    def test_the_zero_output_off_state_is_refused(self, connect, bench, message):
        """In the zero output-off state (2450 manual, `:OUTPut[1]:<function>:SMODe`) the output,
        switched off, is a 0 V source with the current DAC at the full scale of the present range
        (100 uA at a level inside the 30 uA envelope); the normal state limits it at 10 % of the
        range. The emulator keeps the setting (it puts out nothing when off in any state)."""
        driver = enveloped_smu(connect)
        outcome = send(driver, message)
        driver.ask("*OPC?")
        off_state = bench.device("bias").off_state
        assert set(off_state.values()) == {"NORM"}, (outcome, off_state)

    def test_the_zero_output_off_state_of_one_function_is_refused(self, connect, bench, received):
        """`:OUTP:CURR:SMOD ZERO` (the function given): the emulator has no such header, so the
        write path is what is shown."""
        driver = enveloped_smu(connect)
        log = received("bias")
        outcome = send(driver, ":OUTP:CURR:SMOD ZERO")
        assert outcome.startswith("refused") and log.byte_count == 0, (outcome, log.messages)

    def test_the_other_output_off_states_pass(self, connect, bench):
        driver = enveloped_smu(connect)
        for state in ("HIMP", "GUAR", "NORM"):
            assert send(driver, f":OUTP:SMOD {state}") == "sent"
        driver.ask("*OPC?")
        assert set(bench.device("bias").off_state.values()) == {"NORM"}

    def test_the_terminals_are_not_switched_with_the_output_on(self, connect, bench):
        """The bias at 4 uA, then `:ROUT:TERM REAR` (the stock `terminals` parameter sends the
        same): a 2450 switches an output that is on off when the terminals change (manual,
        `:ROUTe:TERMinals`), at its level and behind the guard's record of an output on, so a
        later `:OUTP ON` passed unchecked and applied 4 uA in one step (largest step 1.2 uA). The
        emulator keeps the output on: the terminals are what is shown."""
        driver = enveloped_smu(connect)
        driver.set_output_enabled(True)
        driver.set_current_a(4e-6, ramp_a_per_s=ENVELOPES["bias"].limits["bias_ramp_max_a_per_s"])
        outcome = send(driver, ":ROUT:TERM REAR")
        driver.ask("*OPC?")
        assert bench.device("bias").terminals == "FRON", outcome

    def test_the_terminals_may_be_switched_with_the_output_off(self, connect, bench):
        driver = enveloped_smu(connect)
        driver.set_output_enabled(False)
        driver.terminals("rear")
        driver.ask("*OPC?")
        assert bench.device("bias").terminals == "REAR"

    @pytest.mark.parametrize("message", [":SYST:POS SAV0", ":SYSTem:POSetup SAV4", ":SYST:POS 'mysetup'"])
    def test_a_power_on_setup_other_than_the_reset_is_refused(self, connect, bench, received, message):
        """A saved setup recalled at the next power-up applies levels the guard never saw (a
        reconnect after a power cycle finds them). Not in the emulator: the write path."""
        driver = enveloped_smu(connect)
        log = received("bias")
        outcome = send(driver, message)
        assert outcome.startswith("refused") and log.byte_count == 0, (outcome, log.messages)
        assert send(driver, ":SYST:POS RST") == "sent"

    @pytest.mark.parametrize("language", ["TSP", "SCPI2400", "tsp"])
    def test_a_command_language_other_than_scpi_is_refused(self, connect, bench, language):
        """`*LANG TSP` (or the Series 2400's SCPI) takes effect at the next power-up: from then on
        the driver's messages, its safe state's among them, are not the instrument's commands."""
        driver = enveloped_smu(connect)
        outcome = send(driver, f"*LANG {language}")
        driver.ask("*OPC?")
        assert getattr(bench.device("bias"), "next_language", "SCPI") == "SCPI", outcome
        assert send(driver, "*LANG SCPI") == "sent"

    def test_safe_state_survives_a_function_reply_garbled_into_the_other(self, connect, bench):
        """Found sourcing 0.2 V with the output on (set at the panel before the session); the first
        `:SOUR:FUNC?` of each safe-state attempt answered `CURR` (a valid reply, garbled): safe
        state took the source for current, then `_ensure_current_source` read `VOLT` with the
        output on and refused; both attempts of the runner's make_safe ended so, the output on."""
        from lab.execution.runner import make_safe
        from sim_backend.faults.plan import garble

        from driver_helpers import faults_of

        panel = bench.world.panels["bias"]
        panel.source_function, panel.voltage_level_v, panel.output_enabled = "voltage", 0.2, True
        driver = connect("bias", Keithley2450, envelope=ENVELOPES["bias"])
        original = driver.safe_state

        def safe_state() -> None:
            faults_of(bench, "bias").inject(garble(b"CURR\n"))   # the attempt's first reply: :SOUR:FUNC?'s
            original()

        driver.safe_state = safe_state
        problems = make_safe({"bias": driver})
        assert not panel.output_enabled, f"output on, sourcing {panel.voltage_level_v} V: {problems}"


# --------------------------------------------------------------------------- Lake Shore 336 and 372

#: model -> (driver, options, the regulating output, panel lines leaving the other outputs heating in warm-up)
LAKESHORES = {
    "lakeshore_336": (Lakeshore336, dict(sensor_input="A", heater_output=1, heater_range="medium"), 1,
                      ("OUTMODE 3,5,1,0", "RANGE 3,1", "OUTMODE 4,5,1,0", "RANGE 4,1")),
    "lakeshore_372": (Lakeshore372, dict(sensor_input=6, heater_range="316μA"), 0,
                      ("OUTMODE 1,6,6,0,0,0,10", "RANGE 1,1")),
}

per_lakeshore = pytest.mark.parametrize("lakeshore_model", sorted(LAKESHORES))


class TestLakeshore:
    @pytest.fixture
    def bench_models(self, lakeshore_model) -> dict[str, str]:
        return {"cryostat": lakeshore_model}

    @staticmethod
    def _controller(connect, lakeshore_model):
        driver, options, *_ = LAKESHORES[lakeshore_model]
        return connect("cryostat", driver, envelope=ENVELOPES["cryostat"], **options)

    @per_lakeshore
    @pytest.mark.parametrize("message", [
        'CRVHDR 21,"DT-670-CUSTOM","D1234",2,325.0,1',      # a user curve's format and limit
        "CRVDEL 21",
        'SCAL 1,21,"D1234",4.2,1.6,77.35,1.02,305.0,0.55',    # a SoftCal curve for the control input
        "CRVDEL 21;KRDG? A",
    ])
    def test_what_a_curve_means_is_not_changed(self, connect, bench, received, lakeshore_model, message):
        """A curve's header, its deletion and a SoftCal curve change what the control input's
        kelvin are (INCRV and CRVPT are refused already); the emulator has no user curves, so
        the write path is what is shown."""
        controller = self._controller(connect, lakeshore_model)
        log = received("cryostat")
        outcome = send(controller, message)
        assert outcome.startswith("refused") and log.byte_count == 0, (outcome, log.messages)

    @pytest.mark.parametrize("lakeshore_model", ["lakeshore_372"])
    @pytest.mark.parametrize("message", ["SCAN 7,0", "SCAN 6,1", "SCAN 1,1", "SCAN 06,1"])
    def test_the_scanner_stays_on_the_control_channel(self, connect, bench, lakeshore_model, message):
        """`SCAN 7,0` parks the scanner on channel 7 (autoscan on moves it off in turn): the control
        channel 6 is no longer measured and the loop regulates on its last, stale reading (the
        emulator keeps the setting, its loop reads the stage regardless)."""
        controller = self._controller(connect, lakeshore_model)
        device = bench.device("cryostat")
        send(controller, "SCAN 6,0")
        controller.ask("*ESR?")
        before = list(device.scan)
        outcome = send(controller, message)
        controller.ask("*ESR?")
        assert list(device.scan) == before and int(before[0]) == 6 and before[1] == 0, (outcome, device.scan)

    @per_lakeshore
    def test_a_run_switches_off_the_outputs_it_does_not_regulate_with(self, connect, bench, lakeshore_model):
        """Another output left heating at the front panel (the 336's analog outputs 3 and 4, the
        372's warm-up heater, in warm-up mode with their range on: they drive an external heater
        until the control input reads their setpoint): `set_setpoint_k` switched only the
        regulating output, so they heated on through the run (safe state switches them off). The
        emulator's stage has only the regulating heater: the outputs' ranges are what is shown."""
        _, _, regulating, panel_lines = LAKESHORES[lakeshore_model]
        controller = self._controller(connect, lakeshore_model)
        device = bench.device("cryostat")
        for line in panel_lines:
            device.write_bytes(f"{line}\n".encode())
        controller.set_setpoint_k(4.0)
        heating = {n: out.range_index for n, out in device.outputs.items() if n != regulating and out.range_index}
        assert not heating, f"outputs other than {regulating} left on: {heating}"
