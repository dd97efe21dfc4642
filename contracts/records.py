"""Records a run emits: typed, frozen documents the archive (and any other consumer) subscribes to.

A run is `RunStart`, then any number of `TraceBlock`, `TableRows`, `Result`,
`ParametersResolved` and `SnapshotChanged` in any order, then `RunStop`. Everything is SI; `units` strings are
UDUNITS ("V", "A", "s", "J", "Hz", "K", "ohm", "1" for dimensionless), and each trace channel
carries its own (a node voltage in "V" beside a monitored current in "A").

`RunStart` declares the shape of what will follow (`TraceSpec`, `TableSpec`) so a writer can
create every object up front: an HDF5 file in SWMR mode cannot gain new datasets later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

ParameterValue = float | int | str | bool
ExitStatus = Literal["completed", "aborted", "failed"]
EXIT_STATUSES: tuple[str, ...] = ("completed", "aborted", "failed")


def _as_1d(name: str, values: Any, dtype: Any = None) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    return array


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # frozen dataclasses normalise inputs in __post_init__


@dataclass(frozen=True, eq=False)
class Quantized:
    """One channel's record as the ADC gave it: integer codes and the linear scaling that turns
    them into the channel's units, value = code * step + origin. What was measured is the codes;
    `values()` is derived, so any linear rescaling (the wiring from scope to chip) scales only
    `step` and `origin` (`scaled`)."""

    codes: np.ndarray   # integer
    step: float         # channel units per code
    origin: float       # channel units at code 0

    def values(self) -> np.ndarray:
        return self.codes * self.step + self.origin

    def narrowed(self, bits: int, word_bits: int = 16) -> Quantized:
        """The same record with `bits`-bit codes, when the words carry the ADC's bits at their top
        (their low bits all zero, as scopes send 8-bit samples in 16-bit words); else unchanged
        (an averaged record uses the whole word)."""
        shift = word_bits - bits
        codes = np.asarray(self.codes)
        if shift <= 0 or codes.size == 0 or int(np.bitwise_or.reduce(codes, axis=None)) & ((1 << shift) - 1):
            return self
        narrow = (codes >> shift).astype(np.int8 if bits <= 8 else np.int16)
        return Quantized(narrow, self.step * 2.0**shift, self.origin)

    def scaled(self, linear: Callable[[float], float]) -> Quantized:
        """The same codes through a linear map (f(a x) = a f(x), f(0) = 0) of the values."""
        return Quantized(self.codes, float(linear(self.step)), float(linear(self.origin)))


@dataclass(frozen=True, eq=False)
class TraceCodes:
    """A trace block's samples as ADC codes: sample[t, c, k] = codes[t, c, k] * step[t, c] +
    origin[t, c] for k < points[t, c], and no sample (NaN) from there on: a shorter record, or a
    channel the capture did not record (points 0)."""

    codes: np.ndarray   # integer (n_traces, n_channels, n_points)
    step: np.ndarray    # (n_traces, n_channels), channel units per code
    origin: np.ndarray  # (n_traces, n_channels), channel units at code 0
    points: np.ndarray  # (n_traces, n_channels), samples recorded

    def __post_init__(self) -> None:
        codes = np.asarray(self.codes)
        if codes.ndim == 2:  # a single trace
            codes = codes[np.newaxis]
        if codes.ndim != 3 or codes.dtype.kind not in "iu":
            raise ValueError(f"codes must be integers (n_traces, n_channels, n_points), got {codes.dtype} "
                             f"{codes.shape}")
        _set(self, "codes", codes)
        for name, dtype in (("step", np.float64), ("origin", np.float64), ("points", np.int32)):
            array = np.asarray(getattr(self, name), dtype=dtype).reshape(-1, codes.shape[1])
            if array.shape != codes.shape[:2]:
                raise ValueError(f"TraceCodes.{name} must be (n_traces, n_channels) = {codes.shape[:2]}, "
                                 f"got {array.shape}")
            _set(self, name, array)

    def values(self) -> np.ndarray:
        """The samples the codes stand for (float64, NaN where nothing was recorded)."""
        values = self.codes * self.step[..., np.newaxis] + self.origin[..., np.newaxis]
        values[np.arange(self.codes.shape[2]) >= self.points[..., np.newaxis]] = np.nan
        return values

    def samples(self) -> np.ndarray:
        """`values()` as a block's float32 samples."""
        return self.values().astype(np.float32)

    @classmethod
    def of_channels(cls, channels: Sequence[Quantized | None], n_points: int) -> TraceCodes:
        """One trace of these channels' records, each cut or padded to n_points (None: a channel
        not recorded)."""
        dtype = np.result_type(*(c.codes.dtype for c in channels if c is not None)) if any(channels) else np.int8
        codes = np.zeros((1, len(channels), n_points), dtype=dtype)
        step, origin = np.full((1, len(channels)), np.nan), np.full((1, len(channels)), np.nan)
        points = np.zeros((1, len(channels)), dtype=np.int32)
        for row, channel in enumerate(channels):
            if channel is not None:
                n = min(n_points, channel.codes.size)
                codes[0, row, :n] = channel.codes[:n]
                step[0, row], origin[0, row], points[0, row] = channel.step, channel.origin, n
        return cls(codes, step, origin, points)


@dataclass(frozen=True)
class ColumnSpec:
    """One declared 1-D column: its units and numpy dtype string (bools are stored as int8)."""

    units: str
    dtype: str = "f8"


@dataclass(frozen=True, eq=False)
class TraceSpec:
    """What every `TraceBlock` of the run will look like: its channels, each in its own units
    (a node voltage in "V", a monitored current in "A"), on one time axis, and per-trace columns.

    `traces_max` is what the run expects to archive at most (None: no bound); the archive sizes
    its chunks by it, so a run that keeps a few traces does not allocate room for many.

    `code_bits`: the blocks carry ADC codes (`TraceBlock.codes`) of at most this many bits,
    which the archive stores as such, with their scaling (None: float samples)."""

    channel_names: tuple[str, ...]
    time_s: np.ndarray
    columns: Mapping[str, ColumnSpec] = field(default_factory=dict)
    channel_units: tuple[str, ...] = ()  # one per channel; empty: every channel in volts
    traces_max: int | None = None
    code_bits: int | None = None

    def __post_init__(self) -> None:
        _set(self, "channel_names", tuple(self.channel_names))
        _set(self, "channel_units", _units_per_channel("TraceSpec", self.channel_names, self.channel_units))
        if self.code_bits is not None and not 1 <= self.code_bits <= 16:
            raise ValueError(f"TraceSpec.code_bits must be 1 to 16, got {self.code_bits}")
        _set(self, "time_s", _as_1d("TraceSpec.time_s", self.time_s, np.float64))
        _set(self, "columns", dict(self.columns))
        if not self.channel_names or len(self.time_s) == 0:
            raise ValueError("TraceSpec needs at least one channel and one time point")
        if self.traces_max is not None and self.traces_max < 0:
            raise ValueError(f"TraceSpec.traces_max must be 0 or more, got {self.traces_max}")

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    @property
    def n_points(self) -> int:
        return len(self.time_s)

    @classmethod
    def like(cls, block: TraceBlock) -> TraceSpec:
        """The spec that a block (e.g. one test acquisition) implies."""
        columns = {
            name: ColumnSpec(units, _storage_dtype(values.dtype))
            for name, (values, units) in block.columns.items()
        }
        return cls(block.channel_names, block.time_s, columns, block.channel_units)

    def block(self, samples: Any, columns: Mapping[str, tuple[Any, str]] | None = None) -> TraceBlock:
        """A block of this spec's channels, units and time axis: samples (n_traces, n_channels,
        n_points) in the declared channel order, and a value per trace of every declared column."""
        return TraceBlock(samples, self.time_s, self.channel_names, columns or {}, self.channel_units)

    def block_of_codes(self, codes: TraceCodes, columns: Mapping[str, tuple[Any, str]] | None = None) -> TraceBlock:
        """A block of this spec's channels whose samples are ADC codes with their scaling."""
        return TraceBlock(None, self.time_s, self.channel_names, columns or {}, self.channel_units, codes)


@dataclass(frozen=True)
class TableSpec:
    """A table of 1-D columns of equal length (non-trace data: an I-V sweep, switching events).

    `axis` and `signal` name the columns a viewer plots (x and y); by default the first and last.
    """

    columns: Mapping[str, ColumnSpec]
    axis: str | None = None
    signal: str | None = None

    def __post_init__(self) -> None:
        _set(self, "columns", dict(self.columns))
        if not self.columns:
            raise ValueError("a TableSpec needs at least one column")
        names = list(self.columns)
        _set(self, "axis", self.axis or names[0])
        _set(self, "signal", self.signal or names[-1])
        for role in (self.axis, self.signal):
            if role not in self.columns:
                raise ValueError(f"TableSpec names {role!r}, which is not one of its columns {names}")


@dataclass(frozen=True, eq=False)
class RunStart:
    run_id: str
    procedure: str
    started_at: str  # ISO 8601 with time zone
    parameters: Mapping[str, tuple[ParameterValue, str]]  # name -> (value, units)
    station_text: str
    chip_text: str
    snapshot: Mapping[str, Any]  # JSON-able instrument snapshot
    software_version: str
    emulator_seed: int | None = None  # None on real hardware
    metadata: Mapping[str, Any] = field(default_factory=dict)  # free, JSON-able
    traces: TraceSpec | None = None
    tables: Mapping[str, TableSpec] = field(default_factory=dict)
    #: Parameters left at 0 where 0 means "the plan chooses": the archive keeps room for the
    #: value each plan used (`ParametersResolved`), in the parameter's units.
    automatic: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.run_id or any(c in self.run_id for c in "/\\\0") or self.run_id.startswith("."):
            raise ValueError(f"run_id {self.run_id!r} cannot be used as a file name")
        for name, pair in self.parameters.items():
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], str)):
                raise ValueError(f"parameter {name!r} must be (value, units), got {pair!r}")
        _set(self, "parameters", dict(self.parameters))
        _set(self, "tables", dict(self.tables))
        _set(self, "automatic", tuple(self.automatic))
        unknown = [name for name in self.automatic if name not in self.parameters]
        if unknown:
            raise ValueError(f"automatic parameters {unknown} are not among the parameters")


@dataclass(frozen=True, eq=False)
class TraceBlock:
    """n_traces scope acquisitions: samples (n_traces, n_channels, n_points), channel k in
    channel_units[k] (empty: every channel in volts), and per-trace columns.

    With `codes` (the ADC's codes and scaling, as measured), `samples` are derived from them
    (pass None)."""

    samples: np.ndarray | None
    time_s: np.ndarray
    channel_names: tuple[str, ...]
    columns: Mapping[str, tuple[np.ndarray, str]] = field(default_factory=dict)
    channel_units: tuple[str, ...] = ()
    codes: TraceCodes | None = None

    def __post_init__(self) -> None:
        if self.codes is not None:
            if self.samples is not None:
                raise ValueError("a TraceBlock with codes derives its samples from them: pass samples=None")
            _set(self, "samples", self.codes.samples())
        samples = np.asarray(self.samples, dtype=np.float32)
        if samples.ndim == 2:  # a single trace
            samples = samples[np.newaxis]
        if samples.ndim != 3:
            raise ValueError(f"samples must be (n_traces, n_channels, n_points), got {samples.shape}")
        _set(self, "samples", samples)
        _set(self, "time_s", _as_1d("TraceBlock.time_s", self.time_s, np.float64))
        _set(self, "channel_names", tuple(self.channel_names))
        _set(self, "channel_units", _units_per_channel("TraceBlock", self.channel_names, self.channel_units))
        n_traces, n_channels, n_points = samples.shape
        if (n_channels, n_points) != (len(self.channel_names), len(self.time_s)):
            raise ValueError(
                f"samples shape {samples.shape} does not match {len(self.channel_names)} channel "
                f"names and {len(self.time_s)} time points"
            )
        columns = {}
        for name, (values, units) in self.columns.items():
            array = _as_1d(f"column {name!r}", values)
            if len(array) != n_traces:
                raise ValueError(f"column {name!r} has {len(array)} values for {n_traces} traces")
            columns[name] = (array, units)
        _set(self, "columns", columns)

    @property
    def n_traces(self) -> int:
        return self.samples.shape[0]


@dataclass(frozen=True, eq=False)
class TableRows:
    """Rows appended to a named table: column name -> (1-D values, units)."""

    table: str
    columns: Mapping[str, tuple[np.ndarray, str]]

    def __post_init__(self) -> None:
        columns = {name: (_as_1d(f"{self.table}.{name}", v), u) for name, (v, u) in self.columns.items()}
        lengths = {len(v) for v, _ in columns.values()}
        if len(lengths) != 1:
            raise ValueError(f"table {self.table!r}: columns differ in length {sorted(lengths)}")
        _set(self, "columns", columns)

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.columns.values()))[0])

    def spec(self) -> TableSpec:
        return TableSpec({n: ColumnSpec(u, _storage_dtype(v.dtype)) for n, (v, u) in self.columns.items()})


@dataclass(frozen=True)
class Axis:
    """The coordinate along the first dimension of an array result."""

    name: str
    values: Any
    units: str


@dataclass(frozen=True, eq=False)
class Uncertainty:
    """How well a result is known: the interval [low, high] holding the true value with
    probability `level` (0.95 for a 95 % interval), the method that computed it (named as a paper
    would: "Wilson score interval", "bootstrap percentile interval, 2000 resamples", ...), and the
    standard uncertainty (one σ) where the method gives one, NaN where it does not. `low`,
    `high` and `standard` have the result's shape and units."""

    method: str
    level: float
    low: Any
    high: Any
    standard: Any = float("nan")

    def __post_init__(self) -> None:
        if not self.method:
            raise ValueError("an Uncertainty must name its method")
        if not 0.0 < float(self.level) < 1.0:
            raise ValueError(f"Uncertainty.level is a probability in (0, 1), got {self.level!r}")
        for name in ("low", "high", "standard"):
            _set(self, name, np.asarray(getattr(self, name), dtype=float))
        _set(self, "level", float(self.level))


@dataclass(frozen=True, eq=False)
class Result:
    """A named result in SI `units`; `uncertainty` says how well it is known. A number without
    one says why in `exact` ("setting the run used", "goodness-of-fit statistic", "a 95 % upper
    confidence limit") unless that is evident (counts and text need none)."""

    name: str
    value: Any  # scalar or array
    units: str
    axis: Axis | None = None
    uncertainty: Uncertainty | None = None
    exact: str = ""

    def __post_init__(self) -> None:
        value = np.asarray(self.value)
        if self.axis is not None and (value.ndim == 0 or len(np.ravel(self.axis.values)) != len(value)):
            raise ValueError(f"result {self.name!r}: axis {self.axis.name!r} does not match shape {value.shape}")
        if self.uncertainty is not None and self.exact:
            raise ValueError(f"result {self.name!r} has an uncertainty and says it is exact ({self.exact})")
        if self.uncertainty is not None:
            for name in ("low", "high", "standard"):
                bound = getattr(self.uncertainty, name)
                if bound.shape not in (value.shape, ()) or (name != "standard" and bound.shape != value.shape):
                    raise ValueError(f"result {self.name!r}: uncertainty {name} has shape {bound.shape}, the value "
                                     f"{value.shape}")


@dataclass(frozen=True)
class ParametersResolved:
    """The values a plan chose for its automatic parameters (name -> value in the parameter's
    units). The archive keeps those RunStart declared `automatic` and ignores the others (a
    parameter that was set is its own value)."""

    values: Mapping[str, float]

    def __post_init__(self) -> None:
        _set(self, "values", {name: float(value) for name, value in self.values.items()})


@dataclass(frozen=True, eq=False)
class SnapshotChanged:
    changed_at: str  # ISO 8601
    snapshot: Mapping[str, Any]
    reason: str = ""


@dataclass(frozen=True)
class RunStop:
    exit_status: ExitStatus
    ended_at: str  # ISO 8601
    message: str = ""
    traceback: str = ""

    def __post_init__(self) -> None:
        if self.exit_status not in EXIT_STATUSES:
            raise ValueError(f"exit_status must be one of {EXIT_STATUSES}, got {self.exit_status!r}")


Record = RunStart | TraceBlock | TableRows | Result | ParametersResolved | SnapshotChanged | RunStop


def _units_per_channel(owner: str, names: tuple[str, ...], units: Any) -> tuple[str, ...]:
    """One UDUNITS string per channel; none given: volts, what a scope records."""
    units = tuple(units) if units else ("V",) * len(names)
    if len(units) != len(names) or not all(isinstance(u, str) and u for u in units):
        raise ValueError(f"{owner}.channel_units must give one unit per channel {names}, got {units}")
    return units


def _storage_dtype(dtype: np.dtype) -> str:
    """HDF5 bools are enums that netCDF readers drop; store them as int8."""
    return "i1" if dtype == np.bool_ else np.dtype(dtype).str.lstrip("<>|=")
