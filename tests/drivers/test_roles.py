"""Every driver fills its role, declares its parameters with unit and validator, and a snapshot
of it changes nothing on the instrument."""

from __future__ import annotations

import copy

import pytest
from driver_helpers import station_address
from qcodes import validators as vals

from drivers.keithley_2450 import Keithley2450
from drivers.keysight_33500b import Keysight33500B
from drivers.keysight_81160a import Keysight81160A
from drivers.keysight_infiniium import KeysightInfiniium
from drivers.lakeshore_336 import Lakeshore336
from drivers.lakeshore_372 import Lakeshore372
from drivers.tektronix_dpo import TektronixDPO
from contracts import roles

pytestmark = pytest.mark.timeout(30)

#: driver -> (emulator model, station key, role protocol, the stock QCoDeS class it extends or None)
DRIVERS = {
    Keithley2450: ("keithley_2450", "bias", roles.BiasSource, "Keithley2450"),
    Lakeshore336: ("lakeshore_336", "cryostat", roles.TemperatureController, "LakeshoreModel336"),
    Lakeshore372: ("lakeshore_372", "cryostat", roles.TemperatureController, "LakeshoreModel372"),
    Keysight33500B: ("keysight_33522b", "pulser", roles.PulseGenerator, "Keysight33xxx"),
    Keysight81160A: ("keysight_81160a", "pulser", roles.PulseGenerator, None),
    KeysightInfiniium: ("keysight_infiniium", "scope", roles.Oscilloscope, "KeysightInfiniium"),
    TektronixDPO: ("tektronix_dpo7254", "scope", roles.Oscilloscope, "TektronixDPO7000xx"),
}


@pytest.fixture(params=list(DRIVERS), ids=lambda cls: cls.__name__)
def driver_class(request) -> type:
    return request.param


@pytest.fixture
def bench_models(driver_class) -> dict[str, str]:
    model, role_name, *_ = DRIVERS[driver_class]
    return {role_name: model}


@pytest.fixture
def driver(driver_class, bench, visalib):
    role_name = DRIVERS[driver_class][1]
    instrument = driver_class(f"roles_{driver_class.__name__}", station_address(bench, role_name), visalib=visalib)
    yield instrument
    instrument.close()


def test_driver_satisfies_its_role_protocol(driver, driver_class):
    protocol = DRIVERS[driver_class][2]
    assert isinstance(driver, protocol)
    assert roles.ROLE_PROTOCOLS[driver.envelope.role] is protocol
    others = set(roles.ROLE_PROTOCOLS.values()) - {protocol}
    assert not any(isinstance(driver, other) for other in others)


def _parameters(module, prefix=""):
    for name, parameter in module.parameters.items():
        yield f"{prefix}{name}", parameter
    for name, submodule in module.submodules.items():
        if hasattr(submodule, "parameters"):
            yield from _parameters(submodule, f"{prefix}{name}.")


def _stock_parameter_names(driver_class) -> set[str]:
    """Names the stock base class declares; ours are the rest (for 81160A: all but QCoDeS's own)."""
    stock = DRIVERS[driver_class][3]
    return {"IDN", "timeout"} if stock is None else set()


def test_declared_parameters_have_units_and_validators(driver, driver_class, bench, visalib):
    stock_class = next((base for base in driver_class.__mro__[1:] if base.__name__ == DRIVERS[driver_class][3]), None)
    if stock_class is None:
        ours = {name: p for name, p in _parameters(driver) if name not in _stock_parameter_names(driver_class)}
    else:
        role_name = DRIVERS[driver_class][1]
        reference = stock_class(f"stock_{driver_class.__name__}", station_address(bench, role_name), visalib=visalib)
        try:
            theirs = {name for name, _ in _parameters(reference)}
        finally:
            reference.close()
        ours = {name: p for name, p in _parameters(driver)
                if name.replace(driver.name, reference.name) not in theirs and name not in theirs}
    # The scope drivers declare none (their verbs compose commands); the others do.
    assert bool(ours) == (DRIVERS[driver_class][2] is not roles.Oscilloscope)
    for name, parameter in ours.items():
        assert parameter.vals is not None, f"{name} has no validator"
        assert parameter.unit is not None, f"{name} has no unit"
        if isinstance(parameter.vals, vals.Numbers):  # a real-valued quantity carries a physical unit
            assert parameter.unit, f"{name} is a quantity without a unit"
        assert parameter.__doc__, f"{name} has no docstring"


def _instrument_state(bench, role_name):
    """What a snapshot must not change: the front panel and the error queue / event register."""
    panel = copy.deepcopy(bench.world.panels[role_name])
    device = bench.device(role_name)
    if hasattr(panel, "state") and hasattr(panel, "stage"):      # temperature controller: its settings
        panel = copy.deepcopy(panel.outputs)
    elif hasattr(panel, "records"):                                # scope: settings, not sample arrays
        panel = (copy.deepcopy(panel.channels), panel.trigger, panel.sample_rate_hz, panel.record_length,
                 panel.first_sample_s, panel.state)
    return panel, list(device.status.errors), device.status.esr & 0x3C


def test_snapshot_changes_nothing(driver, driver_class, bench):
    role_name = DRIVERS[driver_class][1]
    before = _instrument_state(bench, role_name)
    snapshot = driver.snapshot(update=True)
    assert snapshot["parameters"]
    assert _instrument_state(bench, role_name) == before
