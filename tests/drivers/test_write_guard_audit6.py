"""A ninth audit of the write guard: front panels changed before the session or while the link
was down (the 2450's source function with its output on; a Lake Shore's manual output and a
setpoint left outside the window with the heater range on), then the driver's own verbs and
reconnects.

Real drivers, both transports (in-process and TCP), the emulated bench; each test asserts what
the instrument must stay inside.
"""

from __future__ import annotations

import time

import pytest
from driver_helpers import ENVELOPES, LakeshoreOnTheBench, enveloped_smu, faults_of, send, trace_smu

from contracts.envelope import EnvelopeError
from drivers._common import InstrumentError
from drivers.lakeshore_336 import Lakeshore336
from drivers.lakeshore_372 import Lakeshore372

pytestmark = pytest.mark.timeout(60)

BIAS_MAX_A = ENVELOPES["bias"].limits["bias_current_max_a"]
WINDOW_K = (ENVELOPES["cryostat"].limit("temperature_min_k"), ENVELOPES["cryostat"].limit("temperature_max_k"))


# --------------------------------------------------------------------------- Keithley 2450

class TestKeithley2450FrontPanel:
    @pytest.fixture
    def bench_models(self) -> dict[str, str]:
        return {}

    def test_a_reconnect_does_not_switch_an_output_on_in_voltage_mode_to_current(self, connect, bench):
        """While the link is down, a person at the panel leaves the SMU sourcing 0 V (voltage
        function, output on; nothing flows) with 1 mA programmed for the current function. The
        driver reconnects and re-applies its compliance, switching the function back to current
        first (`:SOUR:FUNC CURR`) without looking at the output: the source puts 1 mA into the
        chip at once (limit 30 uA)."""
        from sim_backend.faults.plan import drop

        driver = enveloped_smu(connect)
        events = trace_smu(bench)
        bench.device("bias").write_bytes(b":SOUR:CURR 1e-3;:SOUR:FUNC VOLT;:SOUR:VOLT 0;:OUTP ON\n")
        faults_of(bench, "bias").inject(drop())
        outcomes = []
        try:
            outcomes.append(driver.ask("*OPC?"))               # dropped, reconnected, asked again
        except Exception as error:                             # noqa: BLE001 - a refused re-apply may fail it
            outcomes.append(repr(error))
        peak_a = max(abs(a) for _, a in events)
        assert peak_a <= BIAS_MAX_A, (outcomes, f"the chip got {peak_a:.3g} A (limit {BIAS_MAX_A:.3g} A)")


# --------------------------------------------------------------------------- Lake Shore 336 and 372

#: model -> (driver, options, regulating output, OUTMODE's closed-loop mode and the fields after the mode
#: (the control input first), the control input's INTYPE in other units and a setpoint near 4 K in them)
LAKESHORES = {
    "lakeshore_336": (Lakeshore336, dict(sensor_input="A", heater_output=1, heater_range="medium"), 1,
                      (1, "1,0"), "INTYPE A,1,0,0,0,2", -269.0),        # a diode, read in Celsius
    "lakeshore_372": (Lakeshore372, dict(sensor_input=6, heater_range="316μA"), 0,
                      (5, "6,0,0,0,10"), "INTYPE 6,0,2,1,15,0,2", 1118.0),   # read in ohms (a RuOx)
}

per_lakeshore = pytest.mark.parametrize("lakeshore_model", sorted(LAKESHORES))


class TestLakeshoreFrontPanel(LakeshoreOnTheBench):
    LAKESHORES = LAKESHORES

    @pytest.mark.parametrize("lakeshore_model", ["lakeshore_336"])    # the 372's ranges cannot heat that far
    def test_a_manual_output_left_at_the_panel_does_not_heat_past_the_window(self, connect, bench, lakeshore_model):
        """`MOUT 1,100` and soft gains (`PID 1,0.1,0.1,0`, which the guard lets through: in
        closed loop they shape the approach) set at the panel with the heater off: nothing
        heats. In closed loop the manual output is added to the PID's, so `set_setpoint_k(4.0)`
        switching closed loop and the medium range on puts out almost the range's full power
        whatever the stage's temperature: the stage went to 20 K (window up to 12 K). With the
        default gains the loop pulls the stage back to its setpoint, which is why an earlier
        attack saw it hold."""
        controller = self._controller(connect, lakeshore_model)
        for line in ("PID 1,0.1,0.1,0", "MOUT 1,100"):
            bench.device("cryostat").write_bytes(f"{line}\n".encode())
        try:
            controller.set_setpoint_k(4.0)
        except (EnvelopeError, InstrumentError) as error:
            outcome = repr(error)
        else:
            outcome = "set"
        bench.world.clock.advance(300.0)                       # five minutes of lab time
        stage_k = controller.read_temperature_k()
        heater = self._heater(bench, lakeshore_model)
        assert stage_k <= WINDOW_K[1], (outcome, f"stage at {stage_k} K (window {WINDOW_K}); heater at range "
                                        f"{heater.range_index}, {heater.output_pct:.0f} %")

    @per_lakeshore
    def test_a_ramp_does_not_start_from_a_setpoint_left_outside_the_window(self, connect, bench, lakeshore_model):
        """At the panel: the output's mode off (nothing heats), the heater range on, the setpoint
        at 300 K. `set_setpoint_k(4.0, ramp_k_per_min=1.0)` seeds the ramp with the stage's
        temperature only when the range is off; here the ramp starts from 300 K, and the loop,
        switched to closed loop, heats towards a setpoint that takes hours to come into the
        window."""
        output = LAKESHORES[lakeshore_model][2]
        controller = self._controller(connect, lakeshore_model)
        panel = bench.device("cryostat")
        for line in (f"SETP {output},300", f"RANGE {output},1"):   # the mode is off after power-up
            panel.write_bytes(f"{line}\n".encode())
        try:
            controller.set_setpoint_k(4.0, ramp_k_per_min=1.0)
        except (EnvelopeError, InstrumentError) as error:
            outcome = repr(error)
        else:
            outcome = "set"
        time.sleep(0.5)
        controller.read_temperature_k()                        # the loop brought up to now
        heater = self._heater(bench, lakeshore_model)
        target_k = heater.ramping_setpoint_k if heater.ramp_enabled else heater.setpoint_k
        assert heater.range_index == 0 or heater.mode == "off" or WINDOW_K[0] <= target_k <= WINDOW_K[1], (
            outcome, f"heater at range {heater.range_index} in {heater.mode} regulating to {target_k} K "
            f"(window {WINDOW_K})")

    @per_lakeshore
    def test_a_raw_setpoint_is_not_read_in_units_set_at_the_panel(self, connect, bench, lakeshore_model):
        """The control input's units set at the panel before the session (336: Celsius, 372:
        ohms), then `SETP <output>,10` through the driver's write path (a stock parameter sends
        the same): the guard read 10 as kelvin, inside the window; the instrument takes 283.15 K
        (a 10 ohm RuOx: above 1000 K). The guard now lets a setpoint through only once two
        `INTYPE?` replies alike have said kelvin (the role verbs read them)."""
        _, _, output, (_, loop), intype, near_4_k = LAKESHORES[lakeshore_model]
        controller = self._controller(connect, lakeshore_model)
        for line in (intype, f"OUTMODE {output},0,{loop}", f"SETP {output},{near_4_k}"):   # output off
            bench.device("cryostat").write_bytes(f"{line}\n".encode())
        heater = self._heater(bench, lakeshore_model)
        outcome = send(controller, f"SETP {output},10")
        controller.ask("*ESR?")                                # over TCP: the write has been run
        assert WINDOW_K[0] <= heater.setpoint_k <= WINDOW_K[1], (
            outcome, f"setpoint {heater.setpoint_k} K (window {WINDOW_K})")

    @per_lakeshore
    def test_a_setpoint_written_in_kelvin_after_the_units_were_read(self, connect, bench, lakeshore_model):
        """The same raw `SETP <output>,10` once the role has read the control input's units
        (kelvin): it is let through, and the instrument regulates at 10 K."""
        output = LAKESHORES[lakeshore_model][2]
        controller = self._controller(connect, lakeshore_model)
        controller.set_setpoint_k(4.0)
        assert send(controller, f"SETP {output},10") == "sent"
        controller.ask("*ESR?")
        assert self._heater(bench, lakeshore_model).setpoint_k == pytest.approx(10.0)

    @per_lakeshore
    def test_a_heater_range_with_a_setpoint_left_at_the_panel(self, connect, bench, lakeshore_model):
        """`SETP <output>,300` left at the panel (mode and range off: nothing heats). Closed loop
        and a heater range within the station's through the driver's write path (the stock
        `output_group` and `output_range` parameters send the same): the loop would heat the stage
        towards 300 K. Closed loop and a heater range now need a setpoint the guard has read."""
        _, _, output, (closed_loop, loop), *_ = LAKESHORES[lakeshore_model]
        controller = self._controller(connect, lakeshore_model)
        bench.device("cryostat").write_bytes(f"SETP {output},300\n".encode())
        outcomes = [send(controller, message) for message in (f"OUTMODE {output},{closed_loop},{loop}",
                                                              f"RANGE {output},1")]
        controller.ask("*ESR?")
        heater = self._heater(bench, lakeshore_model)
        assert heater.range_index == 0 or heater.mode == "off" or WINDOW_K[0] <= heater.setpoint_k <= WINDOW_K[1], (
            outcomes, f"heater at range {heater.range_index} in {heater.mode} regulating to {heater.setpoint_k} K "
            f"(window {WINDOW_K})")
