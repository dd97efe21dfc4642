"""Published energy figures the efficiency report sets beside the measured ones.

Every figure carries its source and a verification status, as in the physics reference
(reference/physics.md §0, §3, §4):

* "verified": read in the primary source (or its abstract);
* "reported": taken second-hand (press, secondary pages) or recalled — an order of magnitude,
  to be confirmed against the primary text before it is used as a pass/fail target.

SOPS/W (synaptic operations per second per watt) is the reciprocal of the energy per synaptic
event, 1/J.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReferenceFigure:
    key: str                          # short name used in result names
    platform: str
    energy_per_synaptic_event_j: float
    sops_per_w: float
    source: str
    status: str                       # "verified" or "reported"
    note: str = ""


REFERENCE_FIGURES: tuple[ReferenceFigure, ...] = (
    ReferenceFigure(
        "human_brain", "Human brain", 10e-15, 1e14,
        "about 20 W for 1e14-1e15 synaptic events per second; D. Attwell and S. B. Laughlin, "
        "J. Cereb. Blood Flow Metab. 21, 1133 (2001) for the energy budget of signalling",
        "reported", "order of magnitude only"),
    ReferenceFigure(
        "truenorth", "IBM TrueNorth (CMOS, 28 nm)", 26e-12, 46e9,
        "P. A. Merolla et al., Science 345, 668 (2014)",
        "reported", "26 pJ and 46 GSOPS/W typical are unverified; 'up to 400 GSOPS/W' is "
        "verified on a secondary page"),
    ReferenceFigure(
        "spinnaker", "SpiNNaker (ARM, digital)", 1e-9, 1e9,
        "E. Stromatias et al., 'Power analysis of large-scale, real-time neural networks on "
        "SpiNNaker', IJCNN 2013",
        "reported", "nJ range per synaptic event, 1e8-1e9 SOPS/W: order of magnitude only"),
    ReferenceFigure(
        "loihi", "Intel Loihi (CMOS, 14 nm)", 23.6e-12, 1.0 / 23.6e-12,
        "M. Davies et al., IEEE Micro 38(1), 82 (2018)",
        "reported", "23.6 pJ per synaptic spike operation as recalled; confirm in the paper's table"),
    ReferenceFigure(
        "nanowire_design", "Nanowire neuron, design simulation (S1)", 5e-18, 2e17,
        "E. Toomey, K. Segall, K. K. Berggren, Front. Neurosci. 13, 933 (2019); figures via "
        "MIT Technology Review, 19 Jul 2019",
        "reported", "~0.05 fJ per spike and ~0.005 fJ per synaptic event, as reported by the press"),
    ReferenceFigure(
        "nanowire_device", "Nanowire spiking element, fabricated (S2)", 10e-18, 1e17,
        "E. Toomey et al., Nano Lett. 20, 8059 (2020), arXiv:2007.15101 (abstract)",
        "verified", "'on the order of ~10 aJ' per pulse; per spike, not per synaptic event"),
)

#: Electrical watts at the wall per watt removed at 4 K. Physics reference §4: about 1e3 W/W is
#: what brings 5 aJ per synaptic event down to brain-like SOPS/W; practical 4 K cryocoolers sit
#: at 1e3-1e4 W/W (H. J. M. ter Brake and G. F. M. Wiegerinck, Cryogenics 42, 705 (2002),
#: "Low-power cryocooler survey") against the Carnot bound below. Status: reported.
CRYOCOOLER_OVERHEAD_W_PER_W = 1e3
CRYOCOOLER_OVERHEAD_SOURCE = ("physics reference §4 (order of magnitude); H. J. M. ter Brake and "
                              "G. F. M. Wiegerinck, Cryogenics 42, 705 (2002); status: reported")


def carnot_overhead_w_per_w(cold_k: float, warm_k: float = 300.0) -> float:
    """Least possible wall watts per watt lifted from cold_k to warm_k: (T_w − T_c)/T_c."""
    return (warm_k - cold_k) / cold_k


def sops_per_w(energy_per_event_j: float, overhead_w_per_w: float = 0.0) -> float:
    """Synaptic operations per second per watt; with cooling, every joule at the chip costs
    (1 + overhead) joules at the wall plug."""
    if not energy_per_event_j > 0:
        return float("nan")
    return 1.0 / (energy_per_event_j * (1.0 + overhead_w_per_w))
