"""The analyst's side of a dp release: outputs, noise scales and intervals from noisy totals.

A query over data released under differential privacy releases, per group, its noisy
totals (counts and sums, each with discrete-Laplace noise made inside MPC) and nothing
else; every output is computed from them here, after release (post-processing, which
costs no privacy): COUNT is a noisy count, SUM a noisy sum, AVG a noisy sum over a noisy
count (NULL when the noisy count is below 1). Each value comes with the standard deviation
of its noise and a 95% interval: exact quantiles of the total noise for COUNT and SUM; for
AVG, the range of the ratio over the two totals' 97.5% intervals (which covers the true
ratio with probability at least 95%).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from engine.noise import alpha_of, interval, noise_sd


@dataclass(frozen=True)
class NoisySpec:
    """One noisy total of a dp result (see the NoisyTotal message)."""

    measure: int
    component: str
    sensitivity: int
    epsilon: float
    parts: float


@dataclass(frozen=True)
class Noise:
    """What an analyst needs to read one noisy cell: its noise's sd and a 95% interval."""

    sd: float
    low: float | None  # None: unbounded (an AVG whose count may be below one)
    high: float | None


@dataclass(frozen=True)
class OutputSpec:
    """An aggregate output: its function name, measure and decimals."""

    function: str
    measure: int
    decimals: int


def noisy_cells(
    outputs: Sequence[OutputSpec | None], specs: Sequence[NoisySpec], totals: Sequence[int]
) -> tuple[list[int | float | None], list[Noise | None]]:
    """Return one group's output values and their noise (None for label outputs).

    ``totals`` are the group's noisy totals in the order of ``specs``.
    """
    where = {(s.measure, s.component): i for i, s in enumerate(specs)}
    values: list[int | float | None] = []
    noise: list[Noise | None] = []
    for output in outputs:
        if output is None:
            values.append(None)
            noise.append(None)
            continue
        scale = 10**output.decimals
        if output.function in ("count", "sum"):
            component = "n" if output.function == "count" else "s"
            i = where[(output.measure, component)]
            total, spec = totals[i], specs[i]
            half = _half(spec, 0.95)
            if component == "n":
                values.append(total)
                noise.append(Noise(_sd(spec), total - half, total + half))
            else:
                value = Fraction(total, scale)
                values.append(int(value) if scale == 1 else float(value))
                noise.append(
                    Noise(
                        _sd(spec) / scale, float(value - half / scale), float(value + half / scale)
                    )
                )
            continue
        # AVG: a noisy sum over a noisy count.
        i_n, i_s = where[(output.measure, "n")], where[(output.measure, "s")]
        count, total = totals[i_n], totals[i_s]
        half_n, half_s = _half(specs[i_n], 0.975), _half(specs[i_s], 0.975)
        if count < 1:
            values.append(None)
            noise.append(Noise(float("inf"), None, None))
            continue
        average = Fraction(total, scale * count)
        values.append(float(average))
        low_count = count - half_n
        corners = (
            [
                Fraction(total + a, scale * c)
                for a in (-half_s, half_s)
                for c in (low_count, count + half_n)
            ]
            if low_count >= 1
            else []
        )
        sd = _ratio_sd(float(average), count, _sd(specs[i_n]), _sd(specs[i_s]) / scale)
        if corners:
            noise.append(Noise(sd, float(min(corners)), float(max(corners))))
        else:
            noise.append(Noise(sd, None, None))
    return values, noise


def _half(spec: NoisySpec, level: float) -> int:
    return interval(alpha_of(spec.epsilon, spec.sensitivity), spec.parts, level)


def _sd(spec: NoisySpec) -> float:
    return noise_sd(alpha_of(spec.epsilon, spec.sensitivity), spec.parts)


def _ratio_sd(average: float, count: int, sd_count: float, sd_sum: float) -> float:
    """Return the delta-method sd of sum/count (a guide; the interval is what holds)."""
    return math.sqrt((sd_sum / count) ** 2 + (average * sd_count / count) ** 2)
