"""Quantiles and tail probabilities of the Student t, χ² and normal distributions, as the
analyses' intervals and tests use them.

Each is the scipy.special function that scipy.stats itself calls for it (scipy 1.17:
t.ppf → stdtrit, chi2.ppf → 2·gammaincinv(dof/2, ·), chi2.sf → chdtrc, norm.ppf → ndtri), so
the numbers are scipy.stats'. Importing scipy.stats takes 0.73 s on these machines against
0.20 s for scipy.special, in every process that analyses a run: a campaign, a report, each
`nwlab run`.
"""

from __future__ import annotations

import math

import scipy


def t_quantile(probability: float, dof: float) -> float:
    """The Student t distribution's `probability` quantile at `dof` degrees of freedom
    (fractional, as Welch–Satterthwaite gives them; infinite: the normal's)."""
    if math.isinf(dof):
        return normal_quantile(probability)
    return float(scipy.special.stdtrit(dof, probability))


def chi2_quantile(probability: float, dof: float) -> float:
    """The χ² distribution's `probability` quantile at `dof` degrees of freedom."""
    return float(2.0 * scipy.special.gammaincinv(dof / 2.0, probability))


def chi2_survival(x: float, dof: float) -> float:
    """P(χ² > x) at `dof` degrees of freedom: a χ² test's p-value."""
    return float(scipy.special.chdtrc(dof, x))


def normal_quantile(probability: float) -> float:
    """The standard normal distribution's `probability` quantile."""
    return float(scipy.special.ndtri(probability))
