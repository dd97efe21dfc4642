"""The emulated world: lab clock, instruments' front panels, the wiring and the chip.

Personalities (sim_backend.scpi) read and set front panels and ask the world for what depends
on physics: an acquisition, a voltage reading, the stage temperature. The world holds one lock;
transports hold it around every device call.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from sim_backend.bench.chip import ChipUnderTest, DcReading, port_node
from sim_backend.bench.pulse_generator import PulseGeneratorPanel
from sim_backend.bench.scope import OscilloscopePanel
from sim_backend.bench.source_meter import SourceMeter
from sim_backend.bench.station import EmulatedStation
from sim_backend.bench.steady_outcomes import CycleDrives, SteadyOutcome, SteadyOutcomes, drive_of, ends_on_cycle
from sim_backend.bench.temperature_controller import TemperatureControllerPanel
from sim_backend.clock import LabClock
from sim_backend.physics.results import TransientResult
from sim_backend.physics.waveform import PiecewiseLinear

FrontPanel = PulseGeneratorPanel | OscilloscopePanel | SourceMeter | TemperatureControllerPanel

#: Stage temperature when the station has no temperature controller.
DEFAULT_STAGE_TEMPERATURE_K = 2.0
#: The chip sees the stage temperature on this grid. A regulated stage at its fixed point still
#: moves in the last bits from one lab time to the next (3.1710526315789602, ...527, ...473 K),
#: and a last-bit change of a wire's I_sw(T) changes the solver's step decisions, so a seeded
#: campaign took another path whenever the machine's timing differed. 1 µK moves a default wire's
#: I_sw by 1.7 pA, 3.5e-5 of its 50 nA switching spread.
CHIP_TEMPERATURE_RESOLUTION_K = 1e-6
#: Settling simulated after a bias change (the chip's L/R times reach ~10 ns; a real SMU reads
#: milliseconds after its step, long after the transient), and the ramp that applies it.
DC_SETTLE_S = 150e-9
BIAS_RAMP_S = 50e-9
#: Settling simulated when a generator's DC level changes. A real generator holds its level for
#: milliseconds before the scope is armed, long after the burst a step of input current fires
#: (near the f–I onset each spike leaves current in the loop and firing stops after 10-30
#: spikes, a few hundred ns): an acquisition sees the steady state, as on the bench.
DC_INPUT_SETTLE_S = 3e-6
#: The window an SMU reading averages (covers several relaxation-oscillation periods).
DC_READING_S = 20e-9
READING_SAMPLES = 101
#: A settle that switched and has not come to rest is simulated on, RUN_OUT_STRETCH_S at a time,
#: until a stretch passes without a switch or CYCLE_CONFIRM_S have passed in all. A step that
#: makes a wire carrying trapped flux switch starts a burst of alternating switches in the loop
#: that moves the flux out and dies 200-950 ns after the step on the default neuron (steps of
#: 1.55 µA to 33-35 µA, below the port's 36.6 µA switching current): over milliseconds of dwell
#: and aperture a real SMU reads 0 V there, where the end of a 150 ns settle is often still
#: switching. Still switching after CYCLE_CONFIRM_S, the drive holds a limit cycle, and later
#: settles into it, or into a harder drive of the same port, stop at DC_SETTLE_S
#: (steady_outcomes.CycleDrives).
RUN_OUT_STRETCH_S = 100e-9
CYCLE_CONFIRM_S = 1e-6


@dataclass
class World:
    station: EmulatedStation
    seed: int = 0
    clock: LabClock | None = None
    panels: dict[str, FrontPanel] = field(default_factory=dict)   # role name -> front panel
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        if self.clock is None:
            self.clock = LabClock(self.station.clock_acceleration)
        self.rng = np.random.default_rng(self.seed)
        self._chip: ChipUnderTest | None = None
        self.last_capture = None      # ground truth of the last acquisition (tests only)
        # Acquisitions simulate the node voltages the scope probes; with this set, every trace of
        # the chip (branch currents, running energies: a capture's full ground truth) as well.
        self.capture_all_traces = False
        self.scheduled_latches: list[tuple[float, str, bool]] = []   # (lab time, nanowire, repeat)
        self.pending_excursions: list[tuple[float, float, float]] = []  # read from the station
        self.steady_outcomes = SteadyOutcomes()
        self.cycle_drives = CycleDrives()

    @property
    def chip(self) -> ChipUnderTest:
        """The chip under test, loaded from its chip file when physics is first needed."""
        if self._chip is None:
            self._chip = ChipUnderTest.from_station(self.station)
        return self._chip

    # --- time and temperature -------------------------------------------------------------
    def now_s(self) -> float:
        return self.clock.now_s()

    def temperature_controllers(self) -> list[TemperatureControllerPanel]:
        return [p for p in self.panels.values() if isinstance(p, TemperatureControllerPanel)]

    def stage_temperature_k(self) -> float:
        """The chip's temperature: the regulated stage, brought up to the present, on the
        CHIP_TEMPERATURE_RESOLUTION_K grid."""
        controllers = self.temperature_controllers()
        if not controllers:
            return self.chip.definition.temperature_k or DEFAULT_STAGE_TEMPERATURE_K
        controller = controllers[0]
        controller.advance_to(self.now_s())
        steps = round(controller.state.temperature_k / CHIP_TEMPERATURE_RESOLUTION_K)
        return steps * CHIP_TEMPERATURE_RESOLUTION_K

    # --- what reaches the chip -------------------------------------------------------------
    def bias_currents_a(self) -> dict[str, float]:
        """DC current into each bias port from its source-measure unit."""
        currents: dict[str, float] = {}
        for wire in self.station.bias_lines:
            panel = self.panels.get(wire.instrument)
            if isinstance(panel, SourceMeter):
                currents[wire.chip_port] = currents.get(wire.chip_port, 0.0) + panel.sourced_current_a
        return currents

    def generator_output_v(self, index: int, origin_s: float, start_rel_s: float,
                           stop_rel_s: float) -> PiecewiseLinear:
        """Voltage at the generator connector of pulse input `index` (window-relative times)."""
        wire = self.station.pulse_inputs[index]
        generator = self.panels[wire.instrument]
        assert isinstance(generator, PulseGeneratorPanel)
        times_s, volts = generator.channels[wire.channel].output_v(origin_s, start_rel_s, stop_rel_s)
        return PiecewiseLinear(times_s, volts)

    def input_currents_a(self, origin_s: float, start_rel_s: float, stop_rel_s: float) -> dict[str, PiecewiseLinear]:
        """Current into each pulse-input port: attenuated generator voltage over the series R."""
        currents = {}
        for index, wire in enumerate(self.station.pulse_inputs):
            # What leaves the generator at t reaches the port at t + the path's delay.
            volts = self.generator_output_v(index, origin_s, start_rel_s - wire.delay_s, stop_rel_s - wire.delay_s)
            currents[wire.chip_port] = PiecewiseLinear(volts.times_s + wire.delay_s,
                                                       volts.values * wire.amperes_per_volt)
        return currents

    # --- injected faults ----------------------------------------------------------------------
    def inject_latch(self, element: str, *, after_s: float | None = None, repeat: bool = False) -> None:
        """Latch a nanowire resistive (now, or at lab time after_s once the bias is on) until
        every bias current is removed; with `repeat`, again each time the bias comes back (a
        defective wire)."""
        if after_s is None:
            self.chip.latch(element)
        if after_s is not None or repeat:
            self.scheduled_latches.append((after_s or 0.0, element, repeat))

    def inject_excursion(self, *, heat_w: float, duration_s: float, start_s: float | None = None) -> None:
        """Heat the stage by heat_w for duration_s of lab time (a fridge excursion)."""
        start_s = self.now_s() if start_s is None else start_s
        for controller in self.temperature_controllers():
            controller.excursions.append((start_s, start_s + duration_s, heat_w))

    def chip_for_run(self) -> ChipUnderTest:
        """The chip, with any scheduled latch that is due applied (it needs a live bias)."""
        chip = self.chip
        if self.scheduled_latches and any(self.bias_currents_a().values()):
            now_s = self.now_s()
            for due in [entry for entry in self.scheduled_latches if entry[0] <= now_s]:
                if not due[2]:
                    self.scheduled_latches.remove(due)
                chip.latch(due[1])
        return chip

    # --- readings that need physics --------------------------------------------------------
    def chip_at_present_bias(self) -> ChipUnderTest:
        """The chip brought to the SMUs' present bias, as a real source ramps it: slowly.

        SMUs ramp over milliseconds, far slower than the chip's ns dynamics, so a bias change
        is applied quasi-statically: as a DC redistribution (every loop keeping its flux) when
        the chip is at rest and nothing can switch, otherwise as a BIAS_RAMP_S ramp simulated
        for DC_SETTLE_S, and on while it is still switching (`run_out`), whose last
        DC_READING_S is the next SMU reading. From a limit cycle (a port in relaxation
        oscillation, a latched wire) a change simulated OUTCOMES_KEPT times before is drawn from
        those (steady_outcomes). Levels a driver wrote between two readings are points on that
        same slow ramp.
        """
        chip = self.chip_for_run()
        bias_a = self.bias_currents_a()
        chip.release_latch_if_unbiased(bias_a)
        dc_inputs = self.dc_inputs()
        input_changed = dc_inputs is not None and dc_inputs != chip.settled_dc_inputs
        if bias_a == (chip.bias_a or {}) and not input_changed:
            chip.settled_dc_inputs = dc_inputs
            return chip
        temperature_k = self.stage_temperature_k()
        if self.input_idle() and chip.static_bias_change(bias_a, temperature_k=temperature_k, rng=self.rng):
            chip.settled_dc_inputs = None
            return chip
        self._settle(chip, bias_a, dc_inputs, temperature_k)
        return chip

    def _settle(self, chip: ChipUnderTest, bias_a: dict[str, float], dc_inputs: tuple | None,
                temperature_k: float) -> None:
        """Settle the chip at a new DC drive; from a limit cycle, a change simulated
        OUTCOMES_KEPT times before is drawn from those instead (steady_outcomes)."""
        drive = drive_of(bias_a, dc_inputs, temperature_k, chip.latched) if self.input_steady() else None
        start = chip.on_cycle_of()
        change = (start, drive) if start is not None and drive is not None else None
        outcome = self.steady_outcomes.drawn(change, self.rng)
        if outcome is not None:
            chip.continue_from(outcome.result, bias_a=bias_a, latched=outcome.latched,
                               temperature_k=temperature_k, rng=self.rng)
        else:
            settle_s = DC_INPUT_SETTLE_S if dc_inputs is not None else DC_SETTLE_S
            result = chip.run(start_s=0.0, stop_s=settle_s, bias_a=bias_a,
                              inputs_a=self.input_currents_a(self.now_s(), 0.0, settle_s),
                              sample_times_s=np.linspace(settle_s - DC_READING_S, settle_s, READING_SAMPLES),
                              temperature_k=temperature_k, rng=self.rng, bias_ramp_s=BIAS_RAMP_S)
            if drive is not None and not chip.latched and not self.cycle_drives.holds_cycle(drive):
                result = run_out(chip, result, bias_a, temperature_k, self.rng,
                                 lambda stop_s: self.input_currents_a(self.now_s(), 0.0, stop_s))
                if ends_on_cycle(result, DC_READING_S, chip.latched):
                    self.cycle_drives.add(drive)
            outcome = SteadyOutcome(result, chip.latched)
            self.steady_outcomes.keep(change, outcome)
        on_cycle = drive is not None and ends_on_cycle(outcome.result, DC_READING_S, chip.latched)
        chip.cycle = (chip.state, drive) if on_cycle else None
        # Switching over and the currents at rest: a DC state like any other (the next bias
        # change that switches nothing needs no transient), though the settle had events.
        if not chip.settled and not on_cycle and dc_inputs is None and chip.ended_at_rest(outcome.result):
            chip.settled = True
        # The settle's last stretch is what an SMU reads next: the chip has settled into it.
        chip.keep_dc_reading(outcome.result)
        chip.settled_dc_inputs = dc_inputs

    def dc_inputs(self) -> tuple | None:
        """The settings of every pulse input held at a DC level (output on, function DC), None
        if no input is: what a state settled under a DC input depends on."""
        held = tuple((index, channel.offset_v, channel.inverted, channel.load_ohm)
                     for index, channel in self._driving_channels() if channel.function == "DC")
        return held or None

    def bias_port_voltage_v(self, role_name: str) -> float:
        """What an SMU reads: its line resistance drop plus the chip's mean voltage at its port.

        The chip is brought to the present bias, then read over DC_READING_S from its state, so
        a wire that switched stays resistive on the next reading until it retraps (hysteresis).
        """
        wires = [w for w in self.station.bias_lines if w.instrument == role_name]
        panel = self.panels[role_name]
        assert isinstance(panel, SourceMeter)
        if not wires or not panel.output_enabled:
            return 0.0
        wire = wires[0]
        line_v = panel.sourced_current_a * wire.line_resistance_ohm
        chip = self.chip_at_present_bias()
        if chip.settled and self.input_idle():
            return line_v                    # superconducting and static: no voltage on the chip
        reading = chip.take_dc_reading()    # a second reading simulates a stretch of its own
        if reading is None:
            reading = DcReading.of(chip.run(
                start_s=0.0, stop_s=DC_READING_S, bias_a=self.bias_currents_a(),
                inputs_a=self.input_currents_a(self.now_s(), 0.0, DC_READING_S),
                sample_times_s=np.linspace(0.0, DC_READING_S, READING_SAMPLES),
                temperature_k=self.stage_temperature_k(), rng=self.rng,
            ))
        return line_v + reading.node_mean_v[port_node(chip.definition, wire.chip_port)]

    def _driving_channels(self):
        """(pulse input index, generator channel) of every pulse input whose output is on."""
        for index, wire in enumerate(self.station.pulse_inputs):
            generator = self.panels.get(wire.instrument)
            if isinstance(generator, PulseGeneratorPanel) and generator.channels[wire.channel].output_enabled:
                yield index, generator.channels[wire.channel]

    def input_steady(self) -> bool:
        """Every generator output that is on holds a DC level: the drive has no time dependence."""
        return all(channel.function == "DC" for _, channel in self._driving_channels())

    def input_idle(self) -> bool:
        """No generator is driving the chip (output off), so nothing but the bias acts on it."""
        return next(self._driving_channels(), None) is None


def run_out(chip: ChipUnderTest, result: TransientResult, bias_a: dict[str, float], temperature_k: float,
            rng: np.random.Generator, inputs_a=lambda stop_s: {}) -> TransientResult:
    """The chip's last run `result`, simulated on at the same drive, RUN_OUT_STRETCH_S at a time,
    while the last stretch switched and did not end at rest, up to CYCLE_CONFIRM_S after the
    settle began. Returns the last stretch, whose final DC_READING_S is what an SMU reads next.
    `inputs_a(stop_s)` gives the pulse inputs' currents over a stretch (steady inputs only)."""
    elapsed_s = float(result.time_s[-1]) if result.time_s.size else 0.0
    while elapsed_s < CYCLE_CONFIRM_S and result.events and not chip.ended_at_rest(result):
        result = chip.run(start_s=0.0, stop_s=RUN_OUT_STRETCH_S, bias_a=bias_a, inputs_a=inputs_a(RUN_OUT_STRETCH_S),
                          sample_times_s=np.linspace(RUN_OUT_STRETCH_S - DC_READING_S, RUN_OUT_STRETCH_S,
                                                     READING_SAMPLES),
                          temperature_k=temperature_k, rng=rng)
        elapsed_s += RUN_OUT_STRETCH_S
    return result
