"""Shared figure plumbing: a headless matplotlib, SI-prefixed axes, one PNG per figure.

matplotlib is imported here, lazily, so importing the report package costs nothing until a
figure is drawn; the Agg backend means no display is ever needed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from contracts.units import display_unit, format_si, prefix_for  # noqa: F401 - the one formatter, used by the figures

DPI = 120


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def format_value(value: float, units: str, digits: int = 4) -> str:
    """"25.9 µA", "1.2e+17 1/J", "n/a" — a number for a table cell (contracts.units.format_si)."""
    return format_si(value, units, digits)


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
