"""Procedures: typed parameters with units, a plan of steps, the archive layout they produce.

A procedure declares its parameters as a frozen dataclass whose fields use `parameter(...)`
(default, unit, bounds, doc) and implements `plan(context)`, a generator of contracts.steps. Its
`declare()` names the traces and tables the run will archive, so the archive can create every
dataset before the first byte is measured.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from contracts.records import TableSpec, TraceSpec
from contracts.steps import Plan
from contracts.units import display_unit, format_si


class ParameterError(ValueError):
    """A procedure parameter that is unknown, of the wrong type or out of its bounds."""


class MeasurementError(RuntimeError):
    """A plan found that its measurement cannot be made (e.g. no spike where spikes are certain),
    or ended with less valid data than the procedure's stated minimum: the run fails."""


#: Memory a run may hold in scope records at once: float64 samples of every recorded channel and
#: of the time axis, for every capture a plan keeps together (the dry run builds stand-ins too).
CAPTURE_MEMORY_MAX_BYTES = 256 * 2**20
#: Longest scope record a plan may ask for: the smallest maximum record of the supported scopes
#: (Keysight Infiniium S-Series, 100 Mpts).
RECORD_LENGTH_MAX = 100_000_000
#: Fastest sample rate a plan may ask for: the fastest supported scope (Tektronix DPO7254,
#: 40 GS/s). A slower model's own ceiling is checked by its driver when the run configures it.
SAMPLE_RATE_MAX_HZ = 40e9
#: Levels in one bias sweep list (the source steps through them itself, dwell_s each).
SWEEP_LEVELS_MAX = 200_000


def refuse(procedure: str, names: str, problem: str) -> ParameterError:
    """The one line of a parameter set that cannot run: procedure, parameters, the bound."""
    return ParameterError(f"{procedure}: {names}: {problem}")


def too_little(procedure: str, minimum: str, found: str) -> MeasurementError:
    """The error of a run that ended below its procedure's minimum of valid data."""
    return MeasurementError(f"{procedure} measured too little to report: needs {minimum}; got {found}")


def check_record(procedure: str, names: str, record_length: int, arrays: int, kept: int) -> None:
    """Refuse records longer than a scope holds, or captures that would not fit the memory limit:
    `arrays` float64 arrays of record_length per capture (channels and time), `kept` at once."""
    if record_length > RECORD_LENGTH_MAX:
        raise refuse(procedure, names, f"a record of {record_length:,} samples is longer than a scope holds "
                                       f"({RECORD_LENGTH_MAX:,} samples)")
    needed = record_length * arrays * 8 * kept
    if needed > CAPTURE_MEMORY_MAX_BYTES:
        raise refuse(procedure, names, f"{kept} capture(s) of {record_length:,} samples x {arrays} arrays need "
                                       f"{needed / 2**20:,.0f} MiB, above the {CAPTURE_MEMORY_MAX_BYTES / 2**20:.0f} "
                                       "MiB capture memory limit")


def parameter(default: Any, *, unit: str, doc: str, minimum: float | None = None,
              maximum: float | None = None) -> Any:
    """A procedure parameter: its default, UDUNITS unit ("" if none), bounds and meaning. A doc
    that says "0 takes …" marks 0 as "automatic": the plan chooses the value (ParameterInfo.automatic)."""
    return field(default=default, metadata={"unit": unit, "doc": doc, "minimum": minimum, "maximum": maximum})


@dataclass(frozen=True)
class ParameterInfo:
    name: str
    unit: str
    doc: str
    default: Any
    minimum: float | None
    maximum: float | None

    @property
    def automatic(self) -> bool:
        """0 means "the plan chooses" (design values, a measured threshold): the doc says "0 takes"."""
        return self.default == 0 and not isinstance(self.default, bool) and "0 takes" in self.doc


@dataclass(frozen=True)
class PlanContext:
    """What a plan may know besides its parameters: the chip's design values, the mode; and
    where it says which values it chose for its automatic parameters (`resolve`)."""
    chip_design: Mapping[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    #: Seeds the plan's own random choices (a shuffled order) where the run should be repeatable:
    #: on an emulated station, from its seed, so that one seed gives one campaign; None (a real
    #: bench): the plan draws its own and archives it.
    seed: int | None = None
    #: name -> value the plan chose (in the parameter's units); the runner archives each as it
    #: appears (a `ParametersResolved` record). Not a step: step numbers stay those of the plan.
    resolved: dict[str, float] = field(default_factory=dict)

    def resolve(self, **values: float) -> None:
        """The values the plan chose for automatic parameters (e.g. bias_a=24e-6)."""
        self.resolved.update({name: float(value) for name, value in values.items()})


class Procedure:
    """Base class. Subclasses set `name`, `Parameters` and implement `plan` (and `declare`)."""

    name: ClassVar[str]
    Parameters: ClassVar[type]
    #: The least valid data a run must end with to report results; below it the plan raises
    #: `too_little` and the run ends "failed" saying what was missing.
    minimum_valid_data: ClassVar[str] = ""

    def __init__(self, **values: Any) -> None:
        self.parameters = self.validated(values)
        self.check_parameters()

    def check_parameters(self) -> None:
        """Refuse (ParameterError, via `refuse`) parameter sets that no run can carry out: the
        rules between parameters (min < max, a width inside its period, a record that fits the
        memory limit). Called when the parameters are bound, before anything else."""

    def check_bound(self, context: PlanContext) -> None:
        """The same for the rules that need the chip's design values (defaults taken from them).
        The dry run calls it before the plan's first step, and every run starts with a dry run."""

    @classmethod
    def parameter_info(cls) -> list[ParameterInfo]:
        return [ParameterInfo(f.name, f.metadata.get("unit", ""), f.metadata.get("doc", ""), f.default,
                              f.metadata.get("minimum"), f.metadata.get("maximum"))
                for f in dataclasses.fields(cls.Parameters)]

    @classmethod
    def validated(cls, values: Mapping[str, Any]):
        """Build the Parameters from overrides, refusing unknown names, wrong types and bounds."""
        info = {p.name: p for p in cls.parameter_info()}
        unknown = sorted(set(values) - set(info))
        if unknown:
            raise ParameterError(f"{cls.name}: unknown parameter {unknown[0]!r}; "
                                 f"known: {', '.join(info)}")
        merged = {}
        for name, spec in info.items():
            value = values.get(name, spec.default)
            merged[name] = _checked(cls.name, spec, value)
        return cls.Parameters(**merged)

    def parameter_records(self) -> dict[str, tuple[Any, str]]:
        """name -> (value, unit), as the archive stores them."""
        return {p.name: (getattr(self.parameters, p.name), p.unit) for p in self.parameter_info()}

    def automatic_parameters(self) -> tuple[str, ...]:
        """The automatic parameters left at 0: the plan chooses their values (and archives them
        with a `ParametersResolved` record)."""
        return tuple(p.name for p in self.parameter_info() if p.automatic and getattr(self.parameters, p.name) == 0)

    def declare(self, context: PlanContext | None = None) -> tuple[TraceSpec | None, dict[str, TableSpec]]:
        """The traces and tables this run will archive (none by default). `context` is the one
        the plan will get: a record's length may follow the chip's design values (None: the
        fallbacks)."""
        return None, {}

    def plan(self, context: PlanContext) -> Plan:
        raise NotImplementedError


def _checked(procedure: str, spec: ParameterInfo, value: Any) -> Any:
    where = f"{procedure}: parameter {spec.name}"
    default = spec.default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ParameterError(f"{where}: expected true/false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterError(f"{where}: expected a whole number, got {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ParameterError(f"{where}: expected a finite number in {display_unit(spec.unit) or 'no unit'}, "
                                 f"got {value!r}")
        value = float(value)
    elif isinstance(default, tuple):
        if not isinstance(value, (tuple, list)):
            raise ParameterError(f"{where}: expected a list, got {value!r}")
        return tuple(_checked(procedure, dataclasses.replace(spec, default=default[0] if default else 0.0), v)
                     for v in value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise ParameterError(f"{where}: expected text, got {value!r}")
    if spec.minimum is not None and value < spec.minimum:
        raise ParameterError(f"{where} = {format_si(value, spec.unit)} is below its minimum "
                             f"{format_si(spec.minimum, spec.unit)}")
    if spec.maximum is not None and value > spec.maximum:
        raise ParameterError(f"{where} = {format_si(value, spec.unit)} is above its maximum "
                             f"{format_si(spec.maximum, spec.unit)}")
    return value
