"""Procedures: typed parameters with units, a plan of steps, the archive layout they produce.

A procedure declares its parameters as a frozen dataclass whose fields use `parameter(...)`
(default, unit, bounds, doc) and implements `plan(context)`, a generator of lab.steps. Its
`declare()` names the traces and tables the run will archive, so the archive can create every
dataset before the first byte is measured.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lab.records import TableSpec, TraceSpec
from lab.steps import Plan


class ParameterError(ValueError):
    """A procedure parameter that is unknown, of the wrong type or out of its bounds."""


class MeasurementError(RuntimeError):
    """A plan found that its measurement cannot be made (e.g. no spike where spikes are certain)."""


def parameter(default: Any, *, unit: str, doc: str, minimum: float | None = None,
              maximum: float | None = None) -> Any:
    """A procedure parameter: its default, UDUNITS unit ("" if none), bounds and meaning."""
    return field(default=default, metadata={"unit": unit, "doc": doc, "minimum": minimum, "maximum": maximum})


@dataclass(frozen=True)
class ParameterInfo:
    name: str
    unit: str
    doc: str
    default: Any
    minimum: float | None
    maximum: float | None


@dataclass(frozen=True)
class PlanContext:
    """What a plan may know besides its parameters: the chip's design values, the mode."""
    chip_design: Mapping[str, Any] = field(default_factory=dict)
    dry_run: bool = False


class Procedure:
    """Base class. Subclasses set `name`, `Parameters` and implement `plan` (and `declare`)."""

    name: ClassVar[str]
    Parameters: ClassVar[type]

    def __init__(self, **values: Any) -> None:
        self.parameters = self.validated(values)

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

    def declare(self) -> tuple[TraceSpec | None, dict[str, TableSpec]]:
        """The traces and tables this run will archive (none by default)."""
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
            raise ParameterError(f"{where}: expected a finite number in {spec.unit or 'no unit'}, got {value!r}")
        value = float(value)
    elif isinstance(default, tuple):
        if not isinstance(value, (tuple, list)):
            raise ParameterError(f"{where}: expected a list, got {value!r}")
        return tuple(_checked(procedure, dataclasses.replace(spec, default=default[0] if default else 0.0), v)
                     for v in value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise ParameterError(f"{where}: expected text, got {value!r}")
    unit = f" {spec.unit}" if spec.unit else ""
    if spec.minimum is not None and value < spec.minimum:
        raise ParameterError(f"{where} = {value!r}{unit} is below its minimum {spec.minimum!r}{unit}")
    if spec.maximum is not None and value > spec.maximum:
        raise ParameterError(f"{where} = {value!r}{unit} is above its maximum {spec.maximum!r}{unit}")
    return value
