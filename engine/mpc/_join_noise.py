"""Exact two-sided geometric (discrete Laplace) noise for the number of dummy matches.

Each owner of a join adds ``d = clip(D/2 + Y, 0, D)`` dummy rows that match the partner's
dummies, with ``Y`` drawn from the discrete Laplace distribution
``P[Y = y] ∝ exp(-ε·|y|)``, so that the helper's count of matches, ``|A ∩ B| + d_A + d_B``,
is ε-differentially private in ``|A ∩ B|`` from either owner's noise alone
(docs/join-protocol.md, "The join, step by step", step 1, and "What is revealed, to whom").

Sampling is exact (no floating point): ε is a rational number and the sampler is the one of
Canonne, Kamath and Steinke, "The Discrete Gaussian for Differential Privacy" (NeurIPS 2020),
Algorithms 1 and 2, fed by :mod:`secrets`. Clipping to ``[0, D]`` adds a failure probability
δ ≈ exp(-ε·D/2) (about 1e-11 for D = 100, ε = 1/2).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class JoinNoise:
    """Public noise parameters of a join: ``dummies`` (D) and ``epsilon`` (ε, rational).

    Requires ``dummies >= 0`` and ``epsilon > 0``. ``dummies == 0`` adds no dummy rows: the
    helper then learns the exact intersection size (tests only). Raises ValueError otherwise.
    """

    dummies: int = 100
    epsilon: Fraction = Fraction(1, 2)

    def __post_init__(self) -> None:
        if isinstance(self.dummies, bool) or not isinstance(self.dummies, int):
            raise ValueError(f"dummies: got {type(self.dummies).__name__}, want int")
        if self.dummies < 0:
            raise ValueError(f"dummies: got {self.dummies}, want >= 0")
        if not isinstance(self.epsilon, Fraction) or self.epsilon <= 0:
            raise ValueError(f"epsilon: got {self.epsilon!r}, want a Fraction > 0")


def _bernoulli(p: Fraction) -> bool:
    """Return True with probability ``p`` (0 <= p <= 1), exactly."""
    return secrets.randbelow(p.denominator) < p.numerator


def _bernoulli_exp_neg(gamma: Fraction) -> bool:
    """Return True with probability exp(-gamma), exactly; requires gamma >= 0."""
    whole = gamma.numerator // gamma.denominator
    for _ in range(whole):  # exp(-gamma) = exp(-1)^whole · exp(-rest)
        if not _bernoulli_exp_neg_at_most_one(Fraction(1)):
            return False
    return _bernoulli_exp_neg_at_most_one(gamma - whole)


def _bernoulli_exp_neg_at_most_one(gamma: Fraction) -> bool:
    # The first k with Bernoulli(gamma/k) = 0 is odd with probability exp(-gamma).
    k = 1
    while _bernoulli(gamma / k):
        k += 1
    return k % 2 == 1


def discrete_laplace(epsilon: Fraction) -> int:
    """Return Y with P[Y = y] = (1 - α)/(1 + α) · α^|y|, α = exp(-epsilon); requires epsilon > 0."""
    s, t = epsilon.numerator, epsilon.denominator  # the scale is t / s
    while True:
        u = secrets.randbelow(t)
        if not _bernoulli_exp_neg(Fraction(u, t)):
            continue
        v = 0
        while _bernoulli_exp_neg(Fraction(1)):
            v += 1
        magnitude = (u + t * v) // s
        negative = secrets.randbelow(2) == 1
        if negative and magnitude == 0:
            continue  # 0 would otherwise be drawn twice as often
        return -magnitude if negative else magnitude


def dummy_count(noise: JoinNoise) -> int:
    """Return how many of the partner's dummies an owner holds: clip(D/2 + Y, 0, D)."""
    if noise.dummies == 0:
        return 0
    center = noise.dummies // 2
    return min(max(center + discrete_laplace(noise.epsilon), 0), noise.dummies)
