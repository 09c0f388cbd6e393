"""Differential-privacy noise made by the parties together, so that nobody knows its value.

The noise of a released total is discrete Laplace (two-sided geometric) with parameter
alpha = exp(−ε/Δ): P(Z = k) = (1 − α)/(1 + α) · α^|k|, Δ the total's sensitivity and ε its
share of the query's epsilon (Ghosh, Roughgarden, Sundararajan 2009). It is infinitely
divisible: with Pólya (negative binomial) draws X ~ NB(r, α) — failures before r
"successes" of probability 1 − α, r real — the sum of 1/r independent differences
X_i − Y_i is exactly discrete Laplace. Each party adds one such difference with r = 1/h to
its secret-shared input, h = parties − threshold: any h parties' parts sum to full
discrete-Laplace noise, so the release stays ε-DP even when ``threshold`` parties pool what
they know of their own parts (honest majority). The total noise of all n parts is the
difference of two NB(n/h, α) draws, slightly wider (variance n/h times the Laplace's).

Sampling: NB(r, α) as a Gamma–Poisson mixture, λ ~ Gamma(r, α/(1 − α)), X ~ Poisson(λ),
with numpy's PCG64 seeded from the operating system's CSPRNG for every batch. This is not
an exact sampler (floating point), which README states as a residual risk.

Intervals (:func:`interval`) are exact quantiles of the total noise where its support is
small, and of its continuous limit (a difference of two Gamma(n/h) draws, scaled) above.
"""

from __future__ import annotations

import math
import secrets
from functools import lru_cache

import numpy as np

EXACT_SCALE = 2_000  # below this expected |noise| the interval is computed exactly


def alpha_of(epsilon: float, sensitivity: int) -> float:
    """Return α = exp(−ε/Δ) of the discrete Laplace mechanism for one total."""
    if epsilon <= 0 or sensitivity <= 0:
        raise ValueError(f"noise: got epsilon {epsilon}, sensitivity {sensitivity}, want > 0")
    return math.exp(-epsilon / sensitivity)


def party_noise(alpha: float, share: float, size: int) -> list[int]:
    """Return this party's noise parts for ``size`` totals: X − Y with X, Y ~ NB(share, α).

    ``share`` is r = 1/h (h = parties − threshold, see the module docstring).
    """
    rng = np.random.Generator(np.random.PCG64(secrets.randbits(128)))
    scale = alpha / (1.0 - alpha)
    x = rng.poisson(rng.gamma(share, scale, size))
    y = rng.poisson(rng.gamma(share, scale, size))
    return [int(v) for v in (x - y)]


def noise_sd(alpha: float, parts: float) -> float:
    """Return the standard deviation of the total noise of all parties (``parts`` = n/h)."""
    return math.sqrt(2.0 * parts * alpha) / (1.0 - alpha)


def interval(alpha: float, parts: float, level: float = 0.95) -> int:
    """Return c with P(|total noise| <= c) >= level for the sum of all parties' parts.

    The total noise is A − B with A, B ~ NB(parts, α) independent (``parts`` = n/h).
    """
    return _interval(round(alpha, 12), round(parts, 9), level)


@lru_cache(maxsize=256)
def _interval(alpha: float, parts: float, level: float) -> int:
    mean = parts * alpha / (1.0 - alpha)
    if mean <= EXACT_SCALE:
        return _exact_interval(alpha, parts, level)
    # Continuous limit: (1 − α)(A − B) → G1 − G2 with G ~ Gamma(parts, 1).
    return math.ceil(_gamma_difference_quantile(parts, level) / (1.0 - alpha))


def _nb_pmf(alpha: float, parts: float, limit: int) -> np.ndarray:
    k = np.arange(limit + 1, dtype=float)
    log = (
        np.array([math.lgamma(v + parts) for v in k])
        - math.lgamma(parts)
        - np.array([math.lgamma(v + 1) for v in k])
        + parts * math.log(1.0 - alpha)
        + k * math.log(alpha)
    )
    result: np.ndarray = np.exp(log)
    return result


def total_pmf(alpha: float, parts: float, limit: int) -> np.ndarray:
    """Return P(A − B = d) for d = −limit..limit (index d + limit), A, B ~ NB(parts, α).

    The distribution of the noise of a released total, all parties' parts together.
    """
    pmf = _nb_pmf(alpha, parts, 2 * limit + 200)
    out = np.zeros(2 * limit + 1)
    for d in range(limit + 1):
        mass = float(np.dot(pmf[d:], pmf[: len(pmf) - d]))
        out[limit + d] = mass
        out[limit - d] = mass
    return out


def _exact_interval(alpha: float, parts: float, level: float) -> int:
    sd = math.sqrt(parts * alpha) / (1.0 - alpha)
    limit = int(parts * alpha / (1.0 - alpha) + 40 * sd + 50)
    pmf = _nb_pmf(alpha, parts, limit)
    # P(A − B = d) for d >= 0 is Σ_k P(A = k + d) P(B = k).
    covered = 0.0
    for c in range(limit + 1):
        mass = float(np.dot(pmf[c:], pmf[: limit + 1 - c]))
        covered += mass if c == 0 else 2 * mass
        if covered >= level:
            return c
    return limit


def _gamma_difference_quantile(parts: float, level: float) -> float:
    """Return c with P(|G1 − G2| <= c) = level, G ~ Gamma(parts, 1) (numerical integration)."""
    grid = np.linspace(1e-9, parts + 60.0 * math.sqrt(parts) + 60.0, 60_001)
    step = grid[1] - grid[0]
    log_density = (parts - 1.0) * np.log(grid) - grid - math.lgamma(parts)
    density = np.exp(log_density)

    def tail(c: float) -> float:  # P(G1 − G2 > c) = ∫ f(y) P(G1 > y + c) dy
        shifted = grid + c
        survival = np.interp(shifted, grid, np.cumsum(density[::-1])[::-1] * step, right=0.0)
        return float(np.sum(density * survival) * step)

    low, high = 0.0, grid[-1]
    for _ in range(60):
        middle = (low + high) / 2
        if 1.0 - 2.0 * tail(middle) >= level:
            high = middle
        else:
            low = middle
    return float(high)
