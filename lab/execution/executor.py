"""Carries out plan steps against the roles, converting chip quantities through the wiring
(contracts.wiring: generator volts, scope ranges and trigger levels, chip volts and amperes).

The envelope is checked here, before a role verb is called, and again by the drivers. The
same checks and duration estimates serve the dry run (lab.execution.dry_run), which replaces the roles
with stand-in replies.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from contracts import steps
from contracts.clock import LabTime
from contracts.files.station import Station
from contracts.envelope import EnvelopeError
from contracts.wiring import wiring_of
from lab.execution.guards import Excursion, TemperatureWatch, hold_inside
from contracts.roles import AcquisitionLost, role_key
from contracts.units import format_si

log = logging.getLogger(__name__)

#: Lab time a capture is assumed to take in estimates (arm, trigger, fetch).
CAPTURE_ESTIMATE_S = 0.05
#: Captures attempted in a row when the scope loses the armed acquisition (link re-established).
CAPTURE_ATTEMPTS = 3
#: Steps that measure at the stage temperature (checked against the window, see lab.execution.guards).
MEASUREMENTS = (steps.Capture, steps.SweepBias, steps.MeasureBiasVoltage)
#: Ramp for bias changes the executor makes itself (excursions, CycleBias) when neither the plan
#: nor the envelope gave one.
FALLBACK_RAMP_A_PER_S = 1e-5


class StepError(RuntimeError):
    """A step that could not be carried out (e.g. the stage never became stable)."""


@dataclass
class WiringState:
    """What the executor remembers between steps to convert and estimate."""
    bias_a: float = 0.0
    bias_ramp_a_per_s: float | None = None
    bias_output_on: bool = False
    setpoint_k: float | None = None
    pulse_current_a: float = 0.0
    input_enabled: bool = False
    #: Further bias ports (a synapse's weight, a second neuron's bias): level and output state.
    port_bias_a: dict[str, float] = field(default_factory=dict)
    port_output_on: list[str] = field(default_factory=list)       # in the order they came on

    def bias_of(self, port: str | None) -> float:
        """The level last set on `port` (None: the primary bias)."""
        return self.bias_a if port is None else self.port_bias_a.get(port, 0.0)


def bias_port(step_port: str | None, station: Station) -> str | None:
    """None for the primary bias line (named or not), else the further port the step names;
    StationError when no bias source drives it."""
    if step_port is None:
        return None
    path = station.path_to("bias_source", step_port)
    return None if path is station.paths("bias_source")[0] else step_port


def bias_envelope(station: Station, port: str | None):
    """The envelope of the bias source on `port` (None: the primary one)."""
    return station.instruments[station.path_to("bias_source", port).instrument].envelope


def check_step(step: steps.Step, station: Station, state: WiringState) -> None:
    """Refuse a step outside the safety envelope (EnvelopeError); writes nothing."""
    match step:
        case steps.SetTemperature(setpoint_k=setpoint_k, ramp_k_per_min=ramp):
            envelope = station.by_role("temperature_controller").envelope
            envelope.check_temperature_k(setpoint_k)
            if ramp is not None:
                envelope.check_at_most("setpoint_ramp_max_k_per_min", ramp, "setpoint ramp", "K/min")
        case steps.SetBias(current_a=current_a, ramp_a_per_s=ramp, port=port):
            bias_envelope(station, bias_port(port, station)).check_bias(current_a, ramp)
        case steps.CycleBias():
            station.by_role("bias_source").envelope.check_bias(state.bias_a, bias_ramp_a_per_s(station, state))
        case steps.MeasureBiasVoltage(port=port):
            bias_port(port, station)      # a port no bias source drives fails here, in the dry run first
        case steps.SweepBias(levels_a=levels_a, dwell_s=dwell_s):
            check_sweep(levels_a, dwell_s, station, state)
        case steps.ConfigurePulses(current_a=current_a, width_s=width_s):
            check_input(station, current_a, width_s)
        case steps.ConfigureDcInput(current_a=current_a):
            check_input(station, current_a, 0.0)
        case steps.ConfigureCapture(node_ranges_v=node_ranges_v, trigger_on=trigger_on):
            # A node the readout does not wire fails the run; the dry run says so first.
            for node in [*node_ranges_v, *([] if trigger_on == "input" else [trigger_on])]:
                wiring_of(station).readout(chip_node=node)


def check_input(station: Station, current_a: float, width_s: float) -> None:
    """The input's generator volts for current_a, and the current they drive into every port its
    channel feeds (a splitter's other ports too), against the generator's envelope."""
    wiring = wiring_of(station)
    amplitude_v = wiring.generator_v(current_a)
    for port_a in wiring.chip_currents_a(amplitude_v).values():
        station.by_role("pulse_generator").envelope.check_pulse(amplitude_v=amplitude_v, width_s=width_s,
                                                                chip_current_a=port_a)


def check_sweep(levels_a, dwell_s: float, station: Station, state: WiringState) -> None:
    """A sweep is a ramp of its steepest step (from the present bias on) over one dwell."""
    if dwell_s <= 0 or not levels_a:
        raise EnvelopeError(f"refused: a bias sweep needs levels and a dwell > 0 s (got {len(levels_a)} levels, "
                            f"{dwell_s!r} s); nothing was written")
    path_a = np.concatenate([[state.bias_a], levels_a])
    largest_a = float(path_a[1:][np.argmax(np.abs(path_a[1:]))])
    station.by_role("bias_source").envelope.check_bias(largest_a, max(float(np.max(np.abs(np.diff(path_a)))) / dwell_s,
                                                                      1e-300))


def bias_ramp_a_per_s(station: Station, state: WiringState) -> float:
    """The ramp for bias changes the plan did not spell out: its last one, else the envelope's."""
    if state.bias_ramp_a_per_s is not None:
        return state.bias_ramp_a_per_s
    limit = station.by_role("bias_source").envelope.limit("bias_ramp_max_a_per_s")
    return limit if limit is not None else FALLBACK_RAMP_A_PER_S


def estimate_s(step: steps.Step, station: Station, state: WiringState) -> float:
    """Lab time a step should take, for dry runs and progress."""
    match step:
        case steps.SetBias(current_a=current_a, ramp_a_per_s=ramp, port=port):
            return abs(current_a - state.bias_of(bias_port(port, station))) / ramp
        case steps.CycleBias(dwell_s=dwell_s):
            return 2 * abs(state.bias_a) / bias_ramp_a_per_s(station, state) + dwell_s
        case steps.SweepBias(levels_a=levels_a, dwell_s=dwell_s):
            return len(levels_a) * dwell_s
        case steps.WaitTemperatureStable(hold_s=hold_s):
            return hold_s
        case steps.Wait(duration_s=duration_s):
            return duration_s
        case steps.Capture():
            return CAPTURE_ESTIMATE_S
    return 0.0


def remember(step: steps.Step, state: WiringState, station: Station) -> None:
    match step:
        case steps.SetBias(current_a=current_a, ramp_a_per_s=ramp, port=port):
            further = bias_port(port, station)
            if further is None:
                state.bias_a, state.bias_ramp_a_per_s = current_a, ramp
            else:
                state.port_bias_a[further] = current_a
        case steps.SweepBias(levels_a=levels_a):
            state.bias_a = levels_a[-1]
        case steps.SetTemperature(setpoint_k=setpoint_k):
            state.setpoint_k = setpoint_k
        case steps.ConfigurePulses(current_a=current_a) | steps.ConfigureDcInput(current_a=current_a):
            state.pulse_current_a = current_a
        case steps.SetInputEnabled(enabled=enabled):
            state.input_enabled = enabled


class StepExecutor:
    """Executes steps on real role objects (drivers satisfying contracts.roles)."""

    def __init__(self, station: Station, roles: Mapping[str, object], clock: LabTime) -> None:
        self.station = station
        self.wiring = wiring_of(station)
        self.roles = roles
        self.clock = clock
        self.state = WiringState()
        self.capture_nodes: tuple[str, ...] = ()
        controller = roles.get("temperature_controller")
        self.watch = TemperatureWatch(station.guards, controller, clock) if controller is not None else None
        #: What the run met and dealt with (excursions sat out, bias cycles), for its record.
        self.incidents: list[str] = []

    def role(self, name: str):
        try:
            return self.roles[name]
        except KeyError:
            raise StepError(f"the station has no {name.replace('_', ' ')}") from None

    def execute(self, step: steps.Step):
        check_step(step, self.station, self.state)
        if isinstance(step, MEASUREMENTS) and self.watch is not None:
            reply = self._measure_in_window(step)
        else:
            reply = self._dispatch(step)
        self._follow_setpoint(step)
        remember(step, self.state, self.station)
        return reply

    # --- the temperature window (lab.execution.guards) -------------------------------------------------
    def _follow_setpoint(self, step: steps.Step) -> None:
        if self.watch is None:
            return
        match step:
            case steps.SetTemperature():
                self.watch.release()
            case steps.WaitTemperatureStable(setpoint_k=setpoint_k, tolerance_k=tolerance_k):
                self.watch.hold_at(setpoint_k, tolerance_k)

    def _measure_in_window(self, step: steps.Step):
        """Measure with the stage inside its window; a measurement followed by a reading outside
        it, or over which the controller's min/max capture saw the stage outside it, is
        discarded, the excursion sat out, and the measurement taken again."""
        assert self.watch is not None
        self.watch.measurable()
        retakes = self.station.guards.retakes
        for take in range(retakes + 1):
            missing = self.watch.start_capture()
            if missing:
                self._incident(f"no min/max capture around the measurements ({missing}): the stage is read "
                               f"before and after each measurement only, so an excursion that begins and ends "
                               f"within one is not seen")
            # Nothing is measured, nor the chip driven, while the stage is known to be out.
            outside_k = self.watch.outside() if take == 0 else None
            if outside_k is not None:
                self._sit_out_excursion(step, Excursion(outside_k), "held back until then")
                self.watch.start_capture()      # the capture covers the measurement, not the wait
            reply = self._dispatch(step)
            excursion = self.watch.after_measurement()
            if excursion is None:
                return reply
            if take == retakes:
                break
            self._sit_out_excursion(step, excursion, "taken meanwhile discarded and taken again")
        last = (f"last reading {excursion.temperature_k:.4g} K" if not excursion.captured
                else f"last: {excursion.found()}")
        raise StepError(f"{type(step).__name__} was interrupted by the stage leaving its window "
                        f"{self.watch.describe_window()} {retakes + 1} times in a row ({last}); "
                        f"the last one is discarded")

    def _sit_out_excursion(self, step: steps.Step, excursion: Excursion, measurement: str) -> None:
        assert self.watch is not None
        window, name = self.watch.describe_window(), type(step).__name__
        if excursion.captured:
            where = (f"stage at {excursion.temperature_k:.4g} K during the {name} (the {excursion.extreme} "
                     f"temperature of the controller's min/max capture, caught by it)")
        else:
            where = f"stage at {excursion.temperature_k:.4g} K"
        log.warning("%s, outside its window %s: bias to 0 A, input off until it is back", where, window)
        # Nothing drives the chip while it is warm: every bias goes to 0 A (the further ports in
        # the reverse of the order they came on, so a synapse's weight, set last, goes first; then
        # the neuron's) and the input off; back in reverse.
        level_a = self.state.bias_a
        further = self.state.port_output_on[::-1]
        for port in further:
            self._ramp_bias(0.0, port)
        if self.state.bias_output_on:
            self._ramp_bias(0.0)
        if self.state.input_enabled:
            self.role("pulse_generator").set_output_enabled(False)
        waited_s, back_k = self.watch.wait_back(excursion.temperature_k, excursion.found())
        if self.state.bias_output_on:
            self._ramp_bias(level_a)
        for port in reversed(further):
            self._ramp_bias(self.state.port_bias_a.get(port, 0.0), port)
        if self.state.input_enabled:
            self.role("pulse_generator").set_output_enabled(True)
        self._incident(f"{where} left its window {window}: bias at 0 A and input off for {waited_s:.0f} s of "
                       f"lab time until it was back ({back_k:.4g} K); the {name} {measurement}")

    def _incident(self, text: str) -> None:
        """Kept for the run's record, and logged now: whoever watches the run sees it as it happens."""
        self.incidents.append(text)
        log.warning("%s", text)

    def _ramp_bias(self, current_a: float, port: str | None = None) -> None:
        """To current_a at the plan's last ramp (or the envelope's) on `port` (None: the primary)."""
        ramp = bias_ramp_a_per_s(self.station, self.state)
        limit = bias_envelope(self.station, port).limit("bias_ramp_max_a_per_s")
        self.role(role_key("bias_source", port)).set_current_a(
            current_a, ramp_a_per_s=ramp if limit is None else min(ramp, limit))

    def _cycle_bias(self, dwell_s: float) -> float:
        level_a = self.state.bias_a
        bias = self._bias_output_on()
        self._ramp_bias(0.0)
        self.clock.sleep(dwell_s)
        volts_at_zero = bias.measure_voltage_v()
        self._ramp_bias(level_a)
        self._incident(f"bias cycled to 0 A and back to {format_si(level_a, 'A')} "
                       f"(port {volts_at_zero * 1e3:.3f} mV at 0 A)")
        return volts_at_zero

    def _dispatch(self, step: steps.Step):
        match step:
            case steps.SetTemperature(setpoint_k=setpoint_k, ramp_k_per_min=ramp):
                self.role("temperature_controller").set_setpoint_k(setpoint_k, ramp_k_per_min=ramp)
            case steps.ReadTemperature():
                return self.role("temperature_controller").read_temperature_k()
            case steps.WaitTemperatureStable():
                return self._wait_stable(step)
            case steps.SetBias(current_a=current_a, ramp_a_per_s=ramp, port=port):
                self._bias_output_on(bias_port(port, self.station)).set_current_a(current_a, ramp_a_per_s=ramp)
            case steps.CycleBias(dwell_s=dwell_s):
                return self._cycle_bias(dwell_s)
            case steps.MeasureBiasVoltage(port=port):
                port = bias_port(port, self.station)
                return self.wiring.bias_port_v(self._bias_output_on(port).measure_voltage_v(), self.state.bias_of(port),
                                               port)
            case steps.SweepBias(levels_a=levels_a, dwell_s=dwell_s):
                volts = np.asarray(self._bias_output_on().sweep_current_a(levels_a, dwell_s=dwell_s), dtype=float)
                return self.wiring.bias_port_v(volts, np.asarray(levels_a))
            case steps.ConfigurePulses(current_a=current_a, width_s=width_s, edge_s=edge_s,
                                       period_s=period_s, count=count):
                self.role("pulse_generator").configure_pulse(
                    amplitude_v=self.wiring.generator_v(current_a), width_s=width_s, edge_s=edge_s,
                    period_s=period_s, count=count)
            case steps.ConfigureDcInput(current_a=current_a):
                self.role("pulse_generator").configure_dc(level_v=self.wiring.generator_v(current_a))
            case steps.SetInputEnabled(enabled=enabled):
                self.role("pulse_generator").set_output_enabled(enabled)
            case steps.ConfigureCapture():
                self._configure_capture(step)
            case steps.Capture(fire=fire, timeout_s=timeout_s):
                return self._capture(fire, timeout_s)
            case steps.Wait(duration_s=duration_s):
                self.clock.sleep(duration_s)
            case steps.Archive() | steps.Progress() | steps.Note():
                pass   # handled by the runner
            case _:
                raise StepError(f"unknown step {step!r}")
        return None

    def _bias_output_on(self, port: str | None = None):
        """The bias source (on `port`; None: the primary) with its output on: compliance inside
        its envelope first, then the output switched on at zero current, so every later change
        is a ramp from 0 A."""
        bias = self.role(role_key("bias_source", port))
        on = self.state.bias_output_on if port is None else port in self.state.port_output_on
        if not on:
            compliance_v = bias_envelope(self.station, port).limit("compliance_max_v")
            if compliance_v is not None:
                bias.set_compliance_v(compliance_v)
            bias.set_output_enabled(True)
            if port is None:
                self.state.bias_output_on = True
            else:
                self.state.port_output_on.append(port)
        return bias

    def _wait_stable(self, step: steps.WaitTemperatureStable) -> float:
        held, _, readings_k = hold_inside(
            self.role("temperature_controller").read_temperature_k,
            lambda temperature_k: abs(temperature_k - step.setpoint_k) <= step.tolerance_k, self.clock,
            hold_s=step.hold_s, timeout_s=step.timeout_s, poll_s=step.poll_s)
        if not held:
            raise StepError(
                f"stage not stable within ±{step.tolerance_k} K of {step.setpoint_k} K for "
                f"{step.hold_s} s after {step.timeout_s} s of lab time (last reading {readings_k[-1]:.4f} K)")
        return readings_k[-1]

    def _configure_capture(self, step: steps.ConfigureCapture) -> None:
        wiring = self.wiring
        ranges_v = {wiring.scope_channel(node): wiring.node_scope_v(node, range_v)
                    for node, range_v in step.node_ranges_v.items()}
        ranges_v[wiring.monitor.scope_channel] = wiring.monitor_scope_v(step.input_range_a)
        if step.trigger_on == "input":
            # A fraction of the pulse the generator was last told to put out.
            channel = wiring.monitor.scope_channel
            level_v = step.trigger_level * wiring.monitor_scope_v(self.state.pulse_current_a)
        else:
            channel = wiring.scope_channel(step.trigger_on)
            level_v = wiring.node_scope_v(step.trigger_on, step.trigger_level)
        self.role("oscilloscope").configure_acquisition(
            channel_ranges_v=ranges_v, record_length=step.record_length, sample_rate_hz=step.sample_rate_hz,
            pretrigger_s=step.pretrigger_s, trigger_channel=channel, trigger_level_v=level_v,
            average_count=step.average_count)
        self.capture_nodes = tuple(step.node_ranges_v)

    def _capture(self, fire: bool, timeout_s: float) -> steps.ChipTraces | None:
        """One capture; when the scope loses it (a reconnect meanwhile) it is taken again, so
        the plan sees each capture once, never a record from before the reconnect."""
        for attempt in range(1, CAPTURE_ATTEMPTS + 1):
            try:
                return self._capture_once(fire, timeout_s)
            except AcquisitionLost as lost:
                if attempt == CAPTURE_ATTEMPTS:
                    raise StepError(f"capture lost {CAPTURE_ATTEMPTS} times in a row: {lost}") from lost
                log.warning("capture attempt %d lost (%s); capturing again", attempt, lost)
        raise AssertionError("unreachable")

    def _capture_once(self, fire: bool, timeout_s: float) -> steps.ChipTraces | None:
        scope = self.role("oscilloscope")
        scope.arm_single()
        if fire:
            self.role("pulse_generator").trigger()
        if not scope.wait_acquired(self.clock.wall_s(timeout_s)):   # the driver waits on the wall clock
            return None
        wiring = self.wiring
        channels = [wiring.scope_channel(node) for node in self.capture_nodes] + [wiring.monitor.scope_channel]
        traces = scope.fetch_traces(channels)
        nodes = {node: wiring.node_v(node, np.asarray(traces.voltage_v[wiring.scope_channel(node)]))
                 for node in self.capture_nodes}
        input_a = wiring.input_current_a(np.asarray(traces.voltage_v[wiring.monitor.scope_channel]))
        # The wiring's scalings are linear, so the ADC codes stay and only their scaling changes.
        records = traces.quantized_v
        node_quantized = {node: records[channel].scaled(lambda v, node=node: wiring.node_v(node, v))
                          for node in self.capture_nodes if (channel := wiring.scope_channel(node)) in records}
        monitor = records.get(wiring.monitor.scope_channel)
        return steps.ChipTraces(np.asarray(traces.time_s), nodes, input_a, node_quantized,
                                monitor.scaled(wiring.input_current_a) if monitor is not None else None)
