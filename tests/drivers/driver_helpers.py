"""Helpers shared by the driver tests (imported by name; conftest.py holds the fixtures)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from contracts.envelope import Envelope, EnvelopeError
from contracts.wiring import PulsePath
from sim_backend.faults.plan import drop

EMULATED_STATION = Path(__file__).resolve().parents[2] / "stations" / "emulated.yaml"

#: Driver classes of the emulator's models (station file `driver:` values).
DRIVERS = {
    "keysight_33522b": "drivers.keysight_33500b.Keysight33500B",
    "keysight_81160a": "drivers.keysight_81160a.Keysight81160A",
    "keysight_infiniium": "drivers.keysight_infiniium.KeysightInfiniium",
    "tektronix_dpo7254": "drivers.tektronix_dpo.TektronixDPO",
    "lakeshore_336": "drivers.lakeshore_336.Lakeshore336",
    "lakeshore_372": "drivers.lakeshore_372.Lakeshore372",
    "keithley_2450": "drivers.keithley_2450.Keithley2450",
}


def write_station(directory: Path, models: dict[str, str], *, options: dict[str, dict[str, Any]] | None = None,
                  emulator: dict[str, dict[str, Any]] | None = None) -> Path:
    """stations/emulated.yaml with other models behind some instruments, written to `directory`.

    `models` maps station keys (e.g. "scope") to emulator models; the driver follows the model.
    The tests then do not depend on which models the shipped station happens to use.
    """
    root = yaml.safe_load(EMULATED_STATION.read_text())
    root["chip"] = str((EMULATED_STATION.parent / root["chip"]).resolve())
    for name, model in models.items():
        entry = root["instruments"][name]
        entry["emulator"] = {**entry.get("emulator", {}), "model": model, **(emulator or {}).get(name, {})}
        entry["driver"] = DRIVERS[model]
        entry["options"] = (options or {}).get(name, entry.get("options") or {})
    for name, extra in (emulator or {}).items():
        root["instruments"][name]["emulator"].update(extra)
    path = directory / f"station-{'-'.join(sorted(models.values())) or 'shipped'}.yaml"
    for entry in root["instruments"].values():
        if entry.get("visalib"):
            entry["visalib"] = f"{path.name}@nwlab"   # this file's bench, relative to the file
    path.write_text(yaml.safe_dump(root, sort_keys=False))
    return path


#: Envelope limits the driver tests check against (stated here, not read from the station).
ENVELOPES = {
    "cryostat": Envelope("temperature_controller", {
        "temperature_min_k": 1.5, "temperature_max_k": 12.0, "setpoint_ramp_max_k_per_min": 10.0}),
    "pulser": Envelope("pulse_generator", {"pulse_current_max_a": 60e-6, "pulse_width_max_s": 1e-6}),
    "scope": Envelope("oscilloscope", {}),
    "bias": Envelope("bias_source", {
        "bias_current_max_a": 30e-6, "bias_ramp_max_a_per_s": 100e-6, "compliance_max_v": 1.0}),
}
#: Chip amperes per generator volt of the emulated wiring: 20 dB, then 2 kOhm.
CHIP_AMPERES_PER_VOLT = 0.1 / 2000.0
#: The pulser's envelope in generator volts, as the station derives it through that wiring.
PULSER_ENVELOPE = PulsePath("pulser", 1, "input", CHIP_AMPERES_PER_VOLT).generator_envelope(ENVELOPES["pulser"])


def faults_of(bench, role: str):
    """The fault plan of the instrument in `role`, which both transports consult before every reply."""
    return bench.faults_for(next(e.address for e in bench.instruments if e.role == role))


#: Transports served on 127.0.0.1: BenchServer's options for each. ("inproc", the in-process
#: pyvisa backend, is the other transport of the driver tests.)
SERVED = {"tcp": {}, "vxi11": {"vxi11": True, "portmapper_port": None}, "hislip": {"hislip": True}}


def served_address(served, transport: str) -> str:
    """The VISA address of a BenchServer's served instrument over `transport` (a key of SERVED)."""
    return {"tcp": lambda: served.server.visa_address, "vxi11": lambda: served.vxi11_address,
            "hislip": lambda: served.hislip_address}[transport]()


def lose_replies(bench, role: str, loss, *, to: str, after: str | None = None, times: int = 1) -> list[str]:
    """Lose the replies to the next `times` messages that hold a unit matching `to` (a regex), as
    `loss` does (`after`: only where the message before holds a unit matching it); returns the
    messages the instrument got."""
    device, faults = bench.device(role), faults_of(bench, role)
    original, messages, left = device.write_bytes, [], [times]

    def unit(pattern: str) -> re.Pattern:
        return re.compile(rf"(^|;)\s*(?:{pattern})\s*(;|$)", re.IGNORECASE)

    query, before = unit(to), unit(after) if after is not None else None

    def write_bytes(data: bytes) -> None:
        for message in bytes(data).decode("ascii", "replace").split("\n"):
            if message.strip():
                if (query.search(message.strip()) and left[0] > 0
                        and (before is None or (messages and before.search(messages[-1])))):
                    left[0] -= 1
                    faults.inject(loss())        # this query's reply
                messages.append(message.strip())
        original(data)

    device.write_bytes = write_bytes             # the transports look it up on the instance
    return messages


def lose_reports_after(bench, role: str, written: str, report: str, loss, times: int = 1) -> list[str]:
    """Lose the reply to the next `times` `report` queries that follow a message holding a unit
    that matches `written` (a regex), as `loss` does; returns the messages the instrument got."""
    return lose_replies(bench, role, loss, to=re.escape(report), after=written, times=times)


def station_address(bench, role_name: str) -> str:
    return next(entry.address for entry in bench.instruments if entry.role == role_name)


class Received:
    """Messages a personality received, split at LF as the instrument frames them."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def messages(self) -> list[str]:
        return [m.decode("ascii", "replace").strip() for m in bytes(self._buffer).split(b"\n") if m.strip()]

    @property
    def byte_count(self) -> int:
        return len(self._buffer)

    def clear(self) -> None:
        self._buffer.clear()


def enveloped_smu(connect):
    """A Keithley 2450 driver on the bench's bias instrument, with the test envelope and a
    compliance inside it (switching its output on needs one)."""
    from drivers.keithley_2450 import Keithley2450

    driver = connect("bias", Keithley2450, envelope=ENVELOPES["bias"])
    driver.set_compliance_v(0.5)
    return driver


def pulser_problems(generator, bench) -> list[str]:
    """What is wrong with the emulated generator's outputs that are on: a level outside the
    envelope, a pulse wider than it allows, an output the guard believes off."""
    level_max_v = ENVELOPES["pulser"].limits["pulse_current_max_a"] / CHIP_AMPERES_PER_VOLT
    width_max_s = ENVELOPES["pulser"].limits["pulse_width_max_s"]
    problems = []
    for number, channel in bench.world.panels["pulser"].channels.items():
        if not channel.output_enabled:
            continue
        peak_v = abs(channel.offset_v) if channel.function == "DC" else max(abs(channel.high_v), abs(channel.low_v))
        if peak_v > level_max_v * (1 + 1e-9):
            believed = generator.write_guard.commanded(("levels", number))
            problems.append(f"channel {number} at {channel.low_v:.3g}..{channel.high_v:.3g} V, limit "
                            f"{level_max_v:.3g} V; guard believes {believed}")
        if channel.function == "PULS" and channel.pulse_width_s > width_max_s:
            problems.append(f"channel {number} width {channel.pulse_width_s:.3g} s, limit {width_max_s:.3g} s")
        if not generator.write_guard.state.get(("output_on", number)):
            problems.append(f"channel {number} on, the guard believes it off")
    return problems


def assert_generator_safe(bench) -> None:
    """The emulated generator's channel 1 off, at 0 V DC: where its safe state leaves it."""
    channel = bench.world.panels["pulser"].channels[1]
    assert not channel.output_enabled, "the output is on"
    assert (channel.function, channel.offset_v) == ("DC", 0.0), (channel.function, channel.offset_v)


class LakeshoreOnTheBench:
    """A Lake Shore in the cryostat role, per `lakeshore_model`: a test class sets LAKESHORES
    (model -> (driver, options, regulating output, ...))."""

    LAKESHORES: dict[str, tuple] = {}

    @pytest.fixture
    def bench_models(self, lakeshore_model) -> dict[str, str]:
        return {"cryostat": lakeshore_model}

    def _controller(self, connect, lakeshore_model):
        driver, options, *_ = self.LAKESHORES[lakeshore_model]
        return connect("cryostat", driver, envelope=ENVELOPES["cryostat"], **options)

    def _heater(self, bench, lakeshore_model):
        return bench.world.panels["cryostat"].outputs[self.LAKESHORES[lakeshore_model][2]]


def send(driver, message: str) -> str:
    try:
        driver.write(message)
        return "sent"
    except EnvelopeError as error:
        return f"refused: {error}"


def trace_smu(bench) -> list[tuple[float, float]]:
    """(lab time, current sourced into the chip) after every change of the SMU panel."""
    panel, world = bench.world.panels["bias"], bench.world
    events: list[tuple[float, float]] = [(world.now_s(), panel.sourced_current_a)]

    class Traced(type(panel)):
        def __setattr__(self, name, value):
            object.__setattr__(self, name, value)
            if name in ("current_level_a", "output_enabled", "source_function"):
                events.append((world.now_s(), self.sourced_current_a))

    panel.__class__ = Traced
    return events


def largest_rise_a(events) -> float:
    """Largest single step that raised |I| or crossed zero."""
    worst = 0.0
    for (_, a), (_, b) in zip(events, events[1:]):
        if abs(b) > abs(a) or a * b < 0:
            worst = max(worst, abs(b - a))
    return worst


def assert_no_step_above_the_largest(driver, events, outcomes) -> None:
    step = largest_rise_a(events)
    assert step <= driver._largest_step_a() * (1 + 1e-9), (
        outcomes, f"a rise of {step:.3g} A in one source step; the largest step is {driver._largest_step_a():.3g} A; "
        f"levels {[round(v * 1e6, 3) for _, v in events]} uA")


def smu_at(connect, level_a: float):
    """The enveloped SMU on, sourcing `level_a` (ramped there at 100 uA/s)."""
    driver = enveloped_smu(connect)
    driver.set_output_enabled(True)
    driver.set_current_a(level_a, ramp_a_per_s=100e-6)
    return driver


def ask_cut(driver, query: str) -> None:
    """`driver.ask(query)` interrupted (a Ctrl-C) as it starts reading: its reply left unread."""
    import pytest

    handle = driver.visa_handle
    original_read = handle.read

    def cut(*args, **kwargs):
        raise KeyboardInterrupt("cut")

    handle.read = cut
    try:
        with pytest.raises(KeyboardInterrupt):
            driver.ask(query)
    finally:
        handle.read = original_read


class SmuLevelChange(NamedTuple):
    """A stop trial's verbs on a Keithley 2450 (`stop_points.stops_in_the_reconnect`)."""

    prepare: Callable[[], None]             # the output on at 2 µA
    dropped: Callable[[], None]             # a change to 3 µA whose first reply is lost
    left_safe: Callable[[str], list[str]]   # the safe state, called with the exception alive; a bias left on
    follow: Callable[[], None]              # the next ramp, which must land exactly


SMU_START_A, SMU_TARGET_A, SMU_RAMP_A_PER_S = 2e-6, 3e-6, 100e-6   # small levels: short ramps at the envelope's rate


def smu_level_change(smu, bench) -> SmuLevelChange:
    faults = bench.faults_for(station_address(bench, "bias"))
    panel = bench.world.panels["bias"]

    def biased() -> None:
        smu.set_output_enabled(True)
        smu.set_current_a(SMU_START_A, ramp_a_per_s=SMU_RAMP_A_PER_S)

    def dropped_at_the_first_reply() -> None:
        faults.inject(drop())
        smu.set_current_a(SMU_TARGET_A, ramp_a_per_s=SMU_RAMP_A_PER_S)

    def left_safe(where: str) -> list[str]:
        smu.safe_state()
        on = panel.output_enabled and panel.sourced_current_a != 0.0
        return [f"{where}: the safe state left {panel.sourced_current_a:.3g} A on"] if on else []

    def ramps_exactly() -> None:
        biased()
        smu.set_current_a(SMU_TARGET_A, ramp_a_per_s=SMU_RAMP_A_PER_S)
        assert panel.output_enabled and panel.current_level_a == pytest.approx(SMU_TARGET_A, abs=1e-12)

    return SmuLevelChange(biased, dropped_at_the_first_reply, left_safe, ramps_exactly)
