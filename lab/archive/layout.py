"""The file layout (reference/hdf5.md §1, §5): names, NeXus classes and the h5py helpers that
give every dimension of every dataset a dimension scale, so xarray/h5netcdf, silx/h5web and
plain h5py all read the same file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import h5py
import numpy as np

from contracts.records import ColumnSpec, Result, TableSpec, TraceBlock, TraceCodes, TraceSpec, Uncertainty

LIBVER = ("v110", "v110")  # allows SWMR, no 64 KiB attribute limit, readable by HDF5 1.10+
SUFFIX = ".h5"
PARTIAL_SUFFIX = ".h5.partial"
ENTRY = "entry"
TRACES = "traces"
RESULTS = "results"
PARAMETERS_RESOLVED = "parameters_resolved"  # values the plan chose for automatic parameters
SNAPSHOT_LOG = "snapshot_log"  # crash-safe journal of snapshot changes while the run is live
# Names a table may not take inside the entry.
RESERVED = frozenset(
    {TRACES, RESULTS, "parameters", PARAMETERS_RESOLVED, "instrument", "sample", "metadata", "program_name", "run_id",
     "procedure", "start_time", "end_time", "exit_status", "exit_message", "traceback",
     "recovered_traces"}
)
COLUMN_CHUNK = 4096  # elements per chunk of a 1-D column
CHUNK_TARGET_BYTES = 1 << 20
BLOCK_TARGET_BYTES = 32 << 20
#: A block's size when the run does not choose one: the 64 float32 traces of 2 x 10,000 points
#: the write path was measured at (hdf5.md §3). Sized in traces, a block of 8-bit codes was a
#: quarter of that, and the per-block cost (resizes, small columns, flush) a 43 % toll on a raw write.
BLOCK_WANTED_BYTES = 64 * 2 * 10_000 * 4


class ArchiveError(RuntimeError):
    """A run cannot be written or read as the archive layout requires."""


def chunk_traces(bytes_per_trace: int) -> int:
    """Traces per chunk: the largest power of two whose chunk stays within 1 MiB (§3: 8 x 80 kB)."""
    k = 1
    while k < 64 and 2 * k * bytes_per_trace <= CHUNK_TARGET_BYTES:
        k *= 2
    return k


def block_traces(chunk: int, bytes_per_trace: int, wanted: int | None = None) -> int:
    """Traces per write: `wanted`, or about BLOCK_WANTED_BYTES of them; capped at ~32 MiB,
    rounded to whole chunks."""
    if wanted is None:
        wanted = max(1, BLOCK_WANTED_BYTES // bytes_per_trace)
    cap = max(1, BLOCK_TARGET_BYTES // bytes_per_trace)
    n = max(chunk, min(wanted, cap))
    return max(chunk, n - n % chunk)


def set_nx(obj: h5py.HLObject, nx_class: str, **attrs: Any) -> None:
    obj.attrs["NX_class"] = nx_class
    obj.attrs.update(attrs)


def text(group: h5py.Group, name: str, value: str) -> h5py.Dataset:
    """A scalar string dataset (vlen UTF-8, no size limit)."""
    return group.create_dataset(name, data=value, dtype=h5py.string_dtype())


def text_value(value: Any) -> str:
    """A string as h5py reads it (a str, bytes, or a 0-d array of either) as str."""
    value = np.asarray(value).item() if np.ndim(value) == 0 else value
    return value.decode() if isinstance(value, bytes) else str(value)


def note(parent: h5py.Group, name: str, mime: str, data: str, date: str | None = None) -> h5py.Group:
    """An NXnote: h5web renders `application/json` data as a tree."""
    g = parent.create_group(name)
    set_nx(g, "NXnote")
    text(g, "type", mime)
    text(g, "data", data)
    if date:
        text(g, "date", date)
    return g


#: *IDN? fields (QCoDeS's IDN parameter) -> the NeXus field names a reader looks for.
IDENTITY_FIELDS = {"vendor": "vendor", "model": "model", "serial": "serial_number", "firmware": "firmware_version"}


def identities(instrument: h5py.Group, snapshot: Mapping[str, Any]) -> None:
    """One NXcollection per instrument of the station snapshot, named by its role: its address
    and its *IDN? identity, so that a NeXus reader finds the instruments without parsing the
    snapshot (a role named like a field already there gets `_instrument` appended)."""
    for role, state in (snapshot.get("instruments") or {}).items():
        if not isinstance(state, Mapping):
            continue
        name = role if role not in instrument else f"{role}_instrument"
        g = instrument.create_group(name)
        set_nx(g, "NXcollection")
        text(g, "name", str(state.get("name", role)))
        if state.get("address"):
            text(g, "address", str(state["address"]))
        idn = ((state.get("parameters") or {}).get("IDN") or {}).get("value") or {}
        for field_name, nexus_name in IDENTITY_FIELDS.items():
            if idn.get(field_name):
                text(g, nexus_name, str(idn[field_name]))


def json_text(obj: Any) -> str:
    try:
        return json.dumps(obj, sort_keys=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ArchiveError(f"snapshot/metadata is not JSON-able: {exc}") from exc


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def scale(group: h5py.Group, name: str, data: Any = None, *, dtype: Any = None,
          units: str | None = None, unlimited: bool = False, chunk: int = COLUMN_CHUNK) -> h5py.Dataset:
    """A dimension scale (a netCDF dimension + coordinate variable)."""
    if unlimited:
        ds = group.create_dataset(name, (0,), dtype=dtype or "i8", maxshape=(None,),
                                  chunks=(chunk,))
    else:
        ds = group.create_dataset(name, data=np.asarray(data, dtype=dtype))
    ds.make_scale(name)
    if units:
        ds.attrs["units"] = units
    return ds


def attach(ds: h5py.Dataset, *scales: h5py.Dataset) -> None:
    for dim, s in enumerate(scales):
        ds.dims[dim].attach_scale(s)


def index_scales(group: h5py.Group, ds: h5py.Dataset, stem: str) -> None:
    """Attach plain index scales to every dimension of `ds` (h5netcdf refuses partial labelling)."""
    scales = []
    for dim, n in enumerate(ds.shape):
        name = f"{stem}_dim{dim}" if ds.ndim > 1 else f"{stem}_index"
        scales.append(group[name] if name in group else scale(group, name, np.arange(n)))
    attach(ds, *scales)


def column(group: h5py.Group, name: str, spec: ColumnSpec, row_scale: h5py.Dataset,
           chunk: int = COLUMN_CHUNK) -> h5py.Dataset:
    """An empty, growable 1-D column along `row_scale`."""
    try:
        dtype = np.dtype(spec.dtype)
    except TypeError as exc:
        raise ArchiveError(f"column {name!r}: unknown dtype {spec.dtype!r}") from exc
    if dtype.kind not in "biuf":
        raise ArchiveError(f"column {name!r}: only numeric columns are archived, got {dtype}")
    ds = group.create_dataset(name, (0,), dtype=dtype, maxshape=(None,), chunks=(chunk,))
    ds.attrs["units"] = spec.units
    attach(ds, row_scale)
    return ds


#: The trace variable of each unit. Volts keep the name every archive has had, so an all-volt
#: run is laid out as before (voltage (trace, channel, time)); channels in another unit get a
#: variable and a channel dimension of their own (current (trace, current_channel, time)).
SIGNAL_NAMES = {"V": "voltage", "A": "current", "W": "power", "K": "temperature"}
TRACE_SCALES = frozenset({"trace", "time"})


def signal_name(units: str) -> str:
    """The trace variable holding the channels recorded in `units`."""
    return SIGNAL_NAMES.get(units) or "signal_" + "".join(c if c.isalnum() else "_" for c in units)


def channel_dim(signal: str) -> str:
    """The channel dimension of a trace variable (`channel` for voltage, as always)."""
    return "channel" if signal == "voltage" else f"{signal}_channel"


def channel_names_of(signal: str) -> str:
    """The dataset naming the channels of a trace variable, along its channel dimension."""
    return f"{channel_dim(signal)}_name"


def trace_signals(channel_units: tuple[str, ...]) -> dict[str, tuple[str, list[int]]]:
    """signal variable -> (its units, the indices of its channels), voltage first, then in the
    order the units first appear."""
    signals: dict[str, tuple[str, list[int]]] = {}
    for index, units in sorted(enumerate(channel_units), key=lambda p: (signal_name(p[1]) != "voltage", p[0])):
        signals.setdefault(signal_name(units), (units, []))[1].append(index)
    return signals


#: A trace variable stored as ADC codes: `<signal>_code` (trace, channel, time) integers and, per
#: trace and channel, the scaling and the samples recorded; the signal's samples are
#: code * step + origin for time index < points, none (NaN) from there on.
CODE, STEP, ORIGIN, POINTS = "_code", "_step", "_origin", "_points"


def code_dtype(code_bits: int) -> np.dtype:
    """The integer type an archive stores codes of `code_bits` bits in."""
    return np.dtype("i1" if code_bits <= 8 else "i2")


def sample_bytes(spec: TraceSpec) -> int:
    """Bytes per archived sample: the codes' integer type, else float32."""
    return 4 if spec.code_bits is None else code_dtype(spec.code_bits).itemsize


def trace_bytes(spec: TraceSpec) -> int:
    """Bytes of one archived trace: its samples, and a coded one's scaling (step, origin, points)."""
    scaling = 0 if spec.code_bits is None else (8 + 8 + 4) * spec.n_channels
    return sample_bytes(spec) * spec.n_channels * spec.n_points + scaling


def coded_parts(signal: str) -> tuple[str, str, str, str]:
    """The datasets of a signal stored as codes: codes, step, origin, points."""
    return signal + CODE, signal + STEP, signal + ORIGIN, signal + POINTS


def trace_arrays(spec: TraceSpec, block: TraceBlock) -> dict[str, np.ndarray]:
    """A block's samples split into the spec's signal variables (channel order kept within each):
    float samples, or, for a spec with code_bits, the codes and their scaling."""
    out = {}
    for name, (_, indices) in trace_signals(spec.channel_units).items():
        every = len(indices) == spec.n_channels
        if spec.code_bits is None:
            out[name] = block.samples if every else block.samples[:, indices]
            continue
        if block.codes is None:
            raise ArchiveError("a trace block without ADC codes for a run that declared its traces as codes "
                               f"of {spec.code_bits} bits")
        codes = block.codes
        part = (lambda a: a) if every else (lambda a: a[:, indices])
        out.update(zip(coded_parts(name), (_fitted(part(codes.codes), spec.code_bits), part(codes.step),
                                           part(codes.origin), part(codes.points))))
    return out


def _fitted(codes: np.ndarray, code_bits: int) -> np.ndarray:
    """The codes in the archive's integer type; ArchiveError (nothing written) if they do not fit."""
    dtype = code_dtype(code_bits)
    if codes.dtype == dtype:
        return codes
    low, high = (int(codes.min()), int(codes.max())) if codes.size else (0, 0)
    limit = 1 << (code_bits - 1)
    if low < -limit or high >= limit:
        raise ArchiveError(f"ADC codes from {low} to {high} do not fit the {code_bits} bits the run declared "
                           "(the scope's adc_bits); the block was not written")
    return codes.astype(dtype)


def trace_chunk(spec: TraceSpec) -> int:
    """Traces per chunk: within 1 MiB (chunk_traces), and no more than the run expects in all."""
    k = chunk_traces(trace_bytes(spec))
    if spec.traces_max is not None:
        while k > 1 and k // 2 >= spec.traces_max:
            k //= 2
    return k


def trace_column_chunk(spec: TraceSpec) -> int:
    """Elements per chunk of the trace scale and the per-trace columns: a chunk's worth of
    traces when the run says how many it expects (a 4096-row chunk per column would outweigh a
    few dozen traces), else COLUMN_CHUNK."""
    return COLUMN_CHUNK if spec.traces_max is None else max(64, trace_chunk(spec))


def create_traces(entry: h5py.Group, spec: TraceSpec) -> None:
    """`entry/traces` NXdata: one variable per unit, e.g. voltage (trace, channel, time) and
    current (trace, current_channel, time), all unlimited along trace and sharing its scale and
    the time scale; each channel dimension has its scale and a dataset of channel names."""
    g = entry.create_group(TRACES)
    signals = trace_signals(spec.channel_units)
    first = next(iter(signals))
    set_nx(g, "NXdata", signal=first if spec.code_bits is None else first + CODE,
           axes=["trace", channel_dim(first), "time"], trace_indices=0, **{f"{channel_dim(first)}_indices": 1},
           time_indices=2)
    k = trace_chunk(spec)
    rows = trace_column_chunk(spec)
    trace = scale(g, "trace", unlimited=True, chunk=rows)
    trace.attrs["long_name"] = "trace index"
    time = scale(g, "time", spec.time_s, dtype="f8", units="s")
    time.attrs["long_name"] = "time (s)"
    for name, (units, indices) in signals.items():
        n = len(indices)
        channel = scale(g, channel_dim(name), np.arange(n), dtype="i4")
        stored = name if spec.code_bits is None else name + CODE
        v = g.create_dataset(stored, (0, n, spec.n_points), maxshape=(None, n, spec.n_points),
                             chunks=(k, n, spec.n_points),
                             dtype="f4" if spec.code_bits is None else code_dtype(spec.code_bits))
        attach(v, trace, channel, time)
        if spec.code_bits is None:
            v.attrs.update(units=units, long_name=f"{name} ({units})")
        else:
            _coded(g, name, units, spec.code_bits, v, trace, channel, rows)
        names = g.create_dataset(channel_names_of(name), data=[spec.channel_names[i] for i in indices],
                                 dtype=h5py.string_dtype())
        attach(names, channel)
    for name, col in spec.columns.items():
        if name in g:
            raise ArchiveError(f"per-trace column {name!r} clashes with a name in entry/traces")
        column(g, name, col, trace, rows)


def _coded(g: h5py.Group, name: str, units: str, code_bits: int, codes: h5py.Dataset, trace: h5py.Dataset,
           channel: h5py.Dataset, rows: int) -> None:
    """The attributes of a signal's codes and its (trace, channel) scaling datasets."""
    _, step, origin, points = coded_parts(name)
    codes.attrs.update(units="1", long_name=f"{name} ADC codes ({code_bits} bits)",
                       decoded_as=f"{name} ({units}) = {step} * {name}{CODE} + {origin} for time index < {points}, "
                                  "else no sample (NaN)")
    for part, dtype, part_units, what in ((step, "f8", units, f"{name} per code"),
                                         (origin, "f8", units, f"{name} at code 0"),
                                         (points, "i4", "1", "samples recorded")):
        ds = g.create_dataset(part, (0, codes.shape[1]), dtype=dtype, maxshape=(None, codes.shape[1]),
                              chunks=(rows, codes.shape[1]))
        ds.attrs.update(units=part_units, long_name=what)
        attach(ds, trace, channel)


def trace_signal_names(group: h5py.Group) -> list[str]:
    """The signal variables of an archived traces group, its NXdata signal first (old archives:
    just `voltage`); a signal stored as codes by its own name (`voltage` for `voltage_code`)."""
    names = [name[: -len(CODE)] if name.endswith(CODE) else name
             for name, ds in group.items() if isinstance(ds, h5py.Dataset) and ds.ndim == 3]
    signal = text_value(group.attrs.get("signal", ""))
    return sorted(names, key=lambda name: name != signal and name + CODE != signal)


def is_coded(group: h5py.Group, signal: str) -> bool:
    return signal + CODE in group


def signal_dataset(group: h5py.Group, signal: str) -> h5py.Dataset:
    """The stored 3-D dataset of a signal (its codes, for a coded one)."""
    return group[signal + CODE] if is_coded(group, signal) else group[signal]


def signal_units(group: h5py.Group, signal: str) -> str:
    ds = group[signal + STEP] if is_coded(group, signal) else group[signal]
    return text_value(ds.attrs.get("units", ""))


def signal_parts(group: h5py.Group, signal: str) -> set[str]:
    """Every dataset that holds a signal (the variable, or its codes and their scaling)."""
    return set(coded_parts(signal)) if is_coded(group, signal) else {signal}


def read_signal(group: h5py.Group, signal: str, indices: Sequence[int]) -> np.ndarray:
    """Samples of the traces at `indices` (ascending), (n, channel, time) in the signal's units;
    codes are decoded."""
    ds = signal_dataset(group, signal)
    if not len(indices):
        return np.zeros((0, *ds.shape[1:]))
    rows = list(indices)
    if not is_coded(group, signal):
        return np.asarray(ds[rows], dtype=float)
    _, step, origin, points = (group[part] for part in coded_parts(signal))
    return TraceCodes(ds[rows], step[rows], origin[rows], points[rows]).values()


def decoded_traces(traces: Any) -> Any:
    """An xarray Dataset of a traces group (xarray.open_dataset(..., group="entry/traces")) with
    each signal stored as codes decoded into its variable (voltage (trace, channel, time) in V, as
    a float archive has it), the codes and their scaling dropped."""
    for name in [str(n) for n in traces.data_vars]:
        signal = name[: -len(CODE)]
        if not name.endswith(CODE) or signal + STEP not in traces:
            continue
        codes, step, origin, points = (traces[part] for part in coded_parts(signal))
        units = str(step.attrs.get("units", ""))
        values = TraceCodes(codes.values, step.values, origin.values, points.values).values()
        traces = traces.drop_vars(list(coded_parts(signal))).assign(
            {signal: (codes.dims, values, {"units": units, "long_name": f"{signal} ({units})"})})
    return traces


def create_table(entry: h5py.Group, name: str, spec: TableSpec) -> None:
    """A table as its own NXdata group with its own `row` dimension."""
    if name in RESERVED or name in entry:
        raise ArchiveError(f"table name {name!r} is reserved or already used in the entry")
    g = entry.create_group(name)
    set_nx(g, "NXdata", signal=spec.signal, axes=[spec.axis], **{f"{spec.axis}_indices": 0})
    row = scale(g, "row", unlimited=True)
    for col_name, col in spec.columns.items():
        if col_name == "row":
            raise ArchiveError(f"table {name!r}: a column may not be called 'row'")
        column(g, col_name, col, row)


def write_parameters(entry: h5py.Group, parameters: Mapping[str, tuple[Any, str]]) -> None:
    """0-d datasets with @units in an NXcollection (bools as int8, §4)."""
    g = entry.create_group("parameters")
    set_nx(g, "NXcollection")
    for name, (value, units) in parameters.items():
        if isinstance(value, (bool, np.bool_)):
            ds = g.create_dataset(name, data=np.int8(value))
        elif isinstance(value, str):
            ds = text(g, name, value)
        else:
            arr = np.asarray(value)
            if arr.dtype.kind not in "biuf":
                raise ArchiveError(f"parameter {name!r}: cannot store {type(value).__name__}")
            ds = g.create_dataset(name, data=arr)
            if arr.ndim:
                index_scales(g, ds, name)
        ds.attrs["units"] = units


def create_parameters_resolved(entry: h5py.Group, names: Sequence[str],
                               parameters: Mapping[str, tuple[Any, str]]) -> None:
    """Room for the value the plan chose for each automatic parameter: a 0-d float with @units,
    NaN until the plan reports it (created up front: an SWMR file cannot gain datasets later)."""
    g = entry.create_group(PARAMETERS_RESOLVED)
    set_nx(g, "NXcollection")
    for name in names:
        g.create_dataset(name, data=np.float64(np.nan)).attrs["units"] = parameters[name][1]


def write_parameters_resolved(entry: h5py.Group, values: Mapping[str, float]) -> None:
    """The values chosen, into the room RunStart made; names it did not declare are not kept."""
    g = entry.get(PARAMETERS_RESOLVED)
    for name, value in values.items():
        if g is not None and name in g:
            g[name][()] = np.float64(value)


#: Attributes of a result dataset that say how well it is known (contracts.records.Uncertainty).
UNCERTAINTY_METHOD, CONFIDENCE_LEVEL = "uncertainty_method", "confidence_level"
INTERVAL_LOW, INTERVAL_HIGH, STANDARD_UNCERTAINTY = "interval_low", "interval_high", "standard_uncertainty"
#: Attribute of a result without an uncertainty that says why it needs none.
EXACT = "exact_because"


def write_uncertainty(ds: h5py.Dataset, uncertainty: Uncertainty | None) -> None:
    """The interval, its confidence level, the method and the standard uncertainty as attributes
    of the result (arrays beside an array result: a result has tens of points, not millions)."""
    if uncertainty is None:
        return
    ds.attrs[UNCERTAINTY_METHOD] = uncertainty.method
    ds.attrs[CONFIDENCE_LEVEL] = uncertainty.level
    ds.attrs[INTERVAL_LOW] = uncertainty.low
    ds.attrs[INTERVAL_HIGH] = uncertainty.high
    ds.attrs[STANDARD_UNCERTAINTY] = uncertainty.standard


def read_uncertainty(attrs: Mapping[str, Any]) -> Uncertainty | None:
    """What write_uncertainty stored, from a result's attributes (h5py or xarray); None for a
    result archived without one."""
    if UNCERTAINTY_METHOD not in attrs:
        return None
    method = attrs[UNCERTAINTY_METHOD]
    return Uncertainty(method.decode() if isinstance(method, bytes) else str(method), float(attrs[CONFIDENCE_LEVEL]),
                       attrs[INTERVAL_LOW], attrs[INTERVAL_HIGH], attrs.get(STANDARD_UNCERTAINTY, np.nan))


def write_result(entry: h5py.Group, result: Result) -> None:
    """A run result in `entry/results` (NXdata; @signal is the first numeric result)."""
    g = entry.require_group(RESULTS)
    if "NX_class" not in g.attrs:
        set_nx(g, "NXdata")
    if result.name in g:
        raise ArchiveError(f"result {result.name!r} was reported twice")
    value = np.asarray(result.value)
    if value.dtype.kind in "US":
        ds = text(g, result.name, str(result.value))
    else:
        if value.dtype == np.bool_:
            value = value.astype(np.int8)
        ds = g.create_dataset(result.name, data=value)
        if "signal" not in g.attrs:
            g.attrs["signal"] = result.name
    ds.attrs["units"] = result.units
    write_uncertainty(ds, result.uncertainty)
    if result.exact:
        ds.attrs[EXACT] = result.exact
    if value.ndim == 0:
        return
    if result.axis is not None:
        axis_values = np.asarray(result.axis.values)
        if result.axis.name in g:
            axis = g[result.axis.name]
            if axis.shape != axis_values.shape or not np.array_equal(axis[()], axis_values):
                raise ArchiveError(f"result {result.name!r}: axis {result.axis.name!r} differs "
                                   "from the one already stored")
        else:
            axis = scale(g, result.axis.name, axis_values, units=result.axis.units)
        ds.dims[0].attach_scale(axis)
        for dim in range(1, value.ndim):
            ds.dims[dim].attach_scale(scale(g, f"{result.name}_dim{dim}", np.arange(value.shape[dim])))
        if g.attrs.get("signal") == result.name:
            g.attrs.update(axes=[result.axis.name] + ["."] * (value.ndim - 1),
                           **{f"{result.axis.name}_indices": 0})
    else:
        index_scales(g, ds, result.name)
