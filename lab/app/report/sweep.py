"""`nwlab sweep report DIR`: a design sweep's maps, curves and Pareto view, as PNG figures and the
report's Markdown and self-contained HTML (the same blocks as the campaign report).

Per metric: a curve against the parameter for a one-parameter grid (with the intervals as error
bars), a map over the first two parameters of a larger grid (any further ones at their first
value, as the caption says), a scatter coloured by the metric over the first two parameters
of a sampled sweep (against the one parameter if there is one). The Pareto view puts two metrics
against each other, every point that ran as a dot and the non-dominated ones (none lower in
both) joined. Failed points are listed with their error.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import xarray as xr

from lab.app.report.document import (
    Bullets,
    Heading,
    Image,
    Paragraph,
    Table,
    to_markdown,
)
from lab.app.report.html import to_html, write_atomically
from lab.app.report.plots import Figure, empty_note, label, prefix_for, pyplot, save
from sweeps.store import COUNTS

REPORT_DIR = "report"
#: Metrics drawn (the counts and interval bounds are not drawn on their own).
DRAWN_UNITS = {"A", "s", "J", "1"}
DEFAULT_PARETO = (("threshold_a", "energy_per_spike_j"), ("threshold_a", "refractory_s"),
                  ("refractory_s", "energy_per_spike_j"))


class ReportError(ValueError):
    """A sweep directory that cannot be reported (one line)."""


def open_sweep(directory: Path) -> xr.Dataset:
    path = directory / "sweep.nc"
    if not path.exists():
        raise ReportError(f"{directory}: no sweep.nc (run `nwlab sweep SPEC --out {directory}` first)")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as data:
            return data.load()
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: unreadable: {exc}") from None


def metrics_of(data: xr.Dataset) -> list[str]:
    """The metric variables (not bounds, counts, seeds or errors)."""
    skip = {"seed", "error", "elapsed_s", "point", *COUNTS}
    return [n for n in data.data_vars if n not in skip and "bounds_of" not in data[n].attrs]


def parameters_of(data: xr.Dataset) -> list[str]:
    return [n for n in data.coords if "parameter" in data[n].attrs]


def first_width(variable: xr.DataArray) -> xr.DataArray:
    return variable.isel(width_s=0) if "width_s" in variable.dims else variable


def _scaled(values, units: str) -> tuple[np.ndarray, str]:
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    factor, unit = prefix_for(finite if finite.size else np.array([1.0]), units) if units not in ("", "1") \
        else (1.0, "")
    return values * factor, unit


def metric_figure(data: xr.Dataset, name: str, out: Path) -> Figure:
    plt = pyplot()
    params = parameters_of(data)
    variable = first_width(data[name])
    units = data[name].attrs.get("units", "")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    grid = "point" not in data.dims
    caption = data[name].attrs.get("long_name", "")
    if "width_s" in data[name].dims:
        caption += f" (at the first width, {float(data['width_s'][0]) * 1e9:g} ns)"
    y, y_unit = _scaled(variable.values, units)
    if grid and len(params) == 1:
        x, x_unit = _scaled(data[params[0]].values, data[params[0]].attrs.get("units", ""))
        low, high = (f"{name}_low", f"{name}_high")
        if low in data:
            lo, _ = _scaled(first_width(data[low]).values, units)
            hi, _ = _scaled(first_width(data[high]).values, units)
            error = np.nan_to_num(np.vstack([y - lo, hi - y]), nan=0.0, posinf=0.0)
            ax.errorbar(x, y, yerr=np.clip(error, 0, None), fmt="o-", capsize=3)
            caption += "; bars: 95 % interval"
        else:
            ax.plot(x, y, "o-")
        ax.set(xlabel=label(params[0], x_unit), ylabel=label(name, y_unit))
    elif grid:
        others = {p: 0 for p in params[2:]}
        sub = variable.isel(others) if others else variable
        sub = sub.transpose(params[1], params[0]).sortby([params[0], params[1]])   # a grid's values in any order
        x, x_unit = _scaled(sub[params[0]].values, data[params[0]].attrs.get("units", ""))
        yy, yy_unit = _scaled(sub[params[1]].values, data[params[1]].attrs.get("units", ""))
        z, z_unit = _scaled(sub.values, units)
        mesh = ax.pcolormesh(x, yy, np.ma.masked_invalid(z), shading="nearest", cmap="viridis")
        fig.colorbar(mesh, ax=ax, label=label(name, z_unit))
        ax.set(xlabel=label(params[0], x_unit), ylabel=label(params[1], yy_unit))
        if others:
            caption += "; " + ", ".join(f"{p} at {float(data[p][0]):g}" for p in others)
        caption += "; white: no value (a failed point, or no spike)"
    else:
        x, x_unit = _scaled(data[params[0]].values, data[params[0]].attrs.get("units", ""))
        if len(params) == 1:
            ax.plot(x, y, "o")
            ax.set(xlabel=label(params[0], x_unit), ylabel=label(name, y_unit))
        else:
            yy, yy_unit = _scaled(data[params[1]].values, data[params[1]].attrs.get("units", ""))
            missing = ~np.isfinite(y)
            dots = ax.scatter(x[~missing], yy[~missing], c=y[~missing], cmap="viridis", s=28, edgecolors="0.3")
            ax.scatter(x[missing], yy[missing], marker="x", color="0.5", label="no value")
            fig.colorbar(dots, ax=ax, label=label(name, y_unit))
            ax.set(xlabel=label(params[0], x_unit), ylabel=label(params[1], yy_unit))
            if missing.any():
                ax.legend(fontsize=8)
    if not np.isfinite(y).any():
        empty_note(ax, f"no point has a value of {name}")
    ax.set_title(name)
    return Figure(save(fig, out / f"{name}.png"), f"{name} over the design space", caption)


def parameter_values(data: xr.Dataset, params: list[str]) -> dict[str, np.ndarray]:
    """Each parameter's value at every point, in the order of a metric's ravel()."""
    if "point" in data.dims:
        return {p: data[p].values.ravel() for p in params}
    grids = np.meshgrid(*[data[p].values for p in params], indexing="ij")     # a grid's dims: the spec's order
    return {p: g.ravel() for p, g in zip(params, grids)}


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats in both (lower x and lower y), by x."""
    order = np.lexsort((y, x))
    front, best = [], math.inf
    for i in order:
        if y[i] < best:
            front.append(i)
            best = y[i]
    return np.asarray(front, dtype=int)


def pareto_figure(data: xr.Dataset, pair: tuple[str, str], out: Path) -> tuple[Figure, np.ndarray]:
    plt = pyplot()
    a, b = (first_width(data[n]).values.ravel() for n in pair)
    keep = np.isfinite(a) & np.isfinite(b)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    xa, x_unit = _scaled(a, data[pair[0]].attrs.get("units", ""))
    yb, y_unit = _scaled(b, data[pair[1]].attrs.get("units", ""))
    front = np.flatnonzero(keep)[pareto_front(a[keep], b[keep])] if keep.any() else np.array([], dtype=int)
    ax.plot(xa[keep], yb[keep], "o", color="0.6", label=f"{int(keep.sum())} points")
    ax.plot(xa[front], yb[front], "o-", color="C3", label=f"Pareto front ({front.size})")
    ax.set(xlabel=label(pair[0], x_unit), ylabel=label(pair[1], y_unit), title=f"{pair[1]} against {pair[0]}")
    if keep.any():
        ax.legend(fontsize=8)
    else:
        empty_note(ax, "no point has both metrics")
    caption = (f"Every point with both metrics; the front joins those no other point beats in both (lower "
               f"{pair[0]} and lower {pair[1]}).")
    return Figure(save(fig, out / f"pareto_{pair[0]}_{pair[1]}.png"), f"Pareto view: {pair[1]} against {pair[0]}",
                  caption), front


def write_report(directory: str | Path, pareto: tuple[str, str] | None = None) -> Path:
    """Write DIR/report/{report.md, report.html, *.png}; returns the HTML's path."""
    directory = Path(directory)
    data = open_sweep(directory)
    metrics = metrics_of(data)
    if pareto is not None:
        for name in pareto:
            if name not in metrics:
                raise ReportError(f"--pareto {','.join(pareto)}: {name!r} is not a metric of this sweep "
                                  f"({', '.join(metrics)})")
    else:
        pareto = next((pair for pair in DEFAULT_PARETO if set(pair) <= set(metrics)), None)
    out = directory / REPORT_DIR
    out.mkdir(exist_ok=True)
    params = parameters_of(data)
    errors = data["error"].values.ravel()
    failed = [k for k, e in enumerate(errors) if e]
    blocks = [Heading(1, f"Design sweep: {data.attrs.get('chip_name', '')}"),
              Paragraph(f"`{data.attrs.get('chip_file', '')}`, {errors.size} points "
                        f"({data.attrs.get('sampling', '')}), {len(failed)} failed; spec digest "
                        f"`{data.attrs.get('spec_digest', '')}`, seed {data.attrs.get('seed', '')}, "
                        f"{data.attrs.get('software', '')}."),
              Bullets(tuple(f"`{p}`: {data[p].attrs.get('parameter', p)}, {data[p].size} values from "
                            f"{float(data[p].min()):g} to {float(data[p].max()):g} {data[p].attrs.get('units', '')}"
                            for p in params))]
    figures = [metric_figure(data, name, out) for name in metrics]
    if pareto is not None:
        figure, front = pareto_figure(data, pareto, out)
        figures.append(figure)
    blocks.append(Heading(2, "Metrics"))
    blocks += [Image(f.path, f.title, f.caption) for f in figures[:len(metrics)]]
    if pareto is not None:
        blocks.append(Heading(2, "Pareto view"))
        blocks.append(Image(figures[-1].path, figures[-1].title, figures[-1].caption))
        values = parameter_values(data, params)
        rows = tuple(tuple(f"{values[p][k]:.4g}" for p in params)
                     + tuple(f"{float(first_width(data[n]).values.ravel()[k]):.4g}" for n in pareto) for k in front)
        blocks.append(Table(tuple(params) + pareto, rows))
    if failed:
        blocks.append(Heading(2, "Failed points"))
        points = data["point"].values.ravel()
        blocks.append(Table(("point", "error"), tuple((str(int(points[k])), str(errors[k])) for k in failed[:50])))
    markdown = out / "report.md"
    write_atomically(markdown, to_markdown(blocks, out))
    html_path = out / "report.html"
    write_atomically(html_path, to_html(blocks, f"Design sweep {data.attrs.get('chip_name', '')}"))
    return html_path
