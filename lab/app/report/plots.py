"""Shared figure plumbing: a headless matplotlib, SI-prefixed axes, one PNG per figure.

matplotlib is imported here, lazily, so importing the report package costs nothing until a
figure is drawn; the Agg backend means no display is ever needed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

PREFIXES = ((1e-18, "a"), (1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, ""),
            (1e3, "k"), (1e6, "M"), (1e9, "G"))
#: Units that take SI prefixes when shown (dimensionless and compound units are shown as stored).
PREFIXABLE = frozenset({"A", "V", "s", "J", "Hz", "ohm", "W", "K"})
DPI = 120


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def display_unit(units: str) -> str:
    """UDUNITS as people read them: "1" is dimensionless, "J-1" is 1/J, "ohm" is Ω."""
    return {"1": "", "J-1": "1/J", "ohm": "Ω", "K/min": "K/min"}.get(units, units)


def prefix_for(values, units: str) -> tuple[float, str]:
    """(factor, shown unit) so the largest finite |value| × factor lies in [1, 1000)."""
    if units not in PREFIXABLE or units == "K":
        return 1.0, display_unit(units)
    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if finite.size == 0:
        return 1.0, display_unit(units)
    scale, prefix = PREFIXES[0]
    for candidate, name in PREFIXES:
        if finite.max() >= candidate * (1 - 1e-9):
            scale, prefix = candidate, name
    return 1.0 / scale, prefix + display_unit(units)


def format_value(value: float, units: str, digits: int = 4) -> str:
    """"25.9 µA", "1.2e+17 1/J", "nan" — a number for a table cell."""
    if not math.isfinite(value):
        return "n/a"
    factor, shown = prefix_for([value], units)
    if units not in PREFIXABLE and (abs(value) >= 1e5 or 0 < abs(value) < 1e-3):
        return f"{value:.{digits - 1}e} {shown}".rstrip()
    return f"{value * factor:.{digits}g} {shown}".rstrip()


def label(name: str, shown_unit: str) -> str:
    return f"{name} ({shown_unit})" if shown_unit else name


def empty_note(ax, text: str) -> None:
    """Say on the axes why there is nothing to plot (a figure is still written)."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", wrap=True,
            fontsize=10, color="0.35")


def histogram_with_mean(ax, values: np.ndarray, units: str, *, quantity: str, counted: str, mean: float,
                        std: float, bins: int, color: str, mean_label: str = "mean", digits: int = 4) -> None:
    """A histogram of values (with SI prefix), a dashed line at mean labelled mean ± std (σ)."""
    factor, unit = prefix_for(values, units)
    ax.hist(values * factor, bins=bins, color=color, label=f"{values.size} {counted}")
    if math.isfinite(mean):
        ax.axvline(mean * factor, color="k", ls="--",
                   label=f"{mean_label} {mean * factor:.{digits}g} ± {std * factor:.2g} {unit} (σ)")
    ax.set(xlabel=label(quantity, unit), ylabel=f"{counted.split()[-1]} per bin")
    ax.legend(fontsize=8)


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    pyplot().close(fig)
    return path


def finite(*arrays):
    """The arrays restricted to the indices where all are finite."""
    arrays = [np.asarray(a, dtype=float) for a in arrays]
    keep = np.ones(arrays[0].shape, bool)
    for array in arrays:
        keep &= np.isfinite(array)
    return [array[keep] for array in arrays]


class Figure:
    """A written PNG and the words the report puts under it."""

    def __init__(self, path: Path, title: str, caption: str = "") -> None:
        self.path, self.title, self.caption = Path(path), title, caption


def plain_log_x(ax) -> None:
    """A log x axis labelled 20, 30, 50 instead of 2×10¹ (the ranges here span about a decade)."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
