"""Differential-privacy noise: its distribution, drawn through the real MPC path.

Three MPC worker processes each input their noise parts for 10^4 totals of zero; the
released totals are the summed noise, which must follow the intended distribution (the
difference of two NB(n/h, α) draws): a chi-squared test accepts it, and the same test
rejects a noise scale 30% off, so the test cannot pass with the wrong scale.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from engine.cells import CellKind
from engine.mpc.job import CellProgram, MpcJob, cells_field_bits
from engine.mpc.session import MpcSession
from engine.noise import alpha_of, interval, noise_sd, party_noise, total_pmf
from engine.shamir import recombine

from .test_mpc_session import _configs

DRAWS = 10_000
EPSILON, SENSITIVITY = 1.0, 8  # alpha = exp(-1/8): a noise sd of about 14
PARTIES, HONEST = 3, 2  # threshold 1: any 2 parties' parts make the full noise


def _chi_squared(samples: np.ndarray, alpha: float, parts: float) -> tuple[float, int]:
    """Return the chi-squared statistic of ``samples`` against A − B, A, B ~ NB(parts, α),
    over bins of at least 25 expected draws each, and its degrees of freedom."""
    limit = int(20 * noise_sd(alpha, parts))
    pmf = total_pmf(alpha, parts, limit)
    values = np.clip(samples, -limit, limit) + limit
    observed = np.bincount(values, minlength=2 * limit + 1).astype(float)
    expected = pmf * len(samples)
    bins_o, bins_e, acc_o, acc_e = [], [], 0.0, 0.0
    for o, e in zip(observed, expected, strict=True):
        acc_o, acc_e = acc_o + o, acc_e + e
        if acc_e >= 25:
            bins_o.append(acc_o)
            bins_e.append(acc_e)
            acc_o = acc_e = 0.0
    bins_o[-1] += acc_o
    bins_e[-1] += acc_e
    o_arr, e_arr = np.array(bins_o), np.array(bins_e)
    return float(((o_arr - e_arr) ** 2 / e_arr).sum()), len(bins_o) - 1


def _critical(df: int, z: float = 4.75) -> float:
    """Return the chi-squared quantile at 1 − 1e-6 (Wilson–Hilferty approximation)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


@pytest.fixture(scope="module")
def released_noise(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """Return 10^4 totals of zero released through the MPC workers: pure noise."""
    tmp_path = tmp_path_factory.mktemp("noise")
    configs = _configs(tmp_path)
    alpha = alpha_of(EPSILON, SENSITIVITY)
    program = CellProgram(
        (CellKind.COUNT,) * DRAWS,
        tuple((i, -1, -1, -1, -1, -1, -1, -1) for i in range(DRAWS)),
        (0,) * DRAWS,  # release mode dp: noisy, never suppressed
        (0,) * DRAWS,
    )
    job = MpcJob("noise", cells_field_bits(program), DRAWS, program)

    async def run() -> list:  # type: ignore[type-arg]
        sessions = [MpcSession(c, tmp_path / c.name) for c in configs]
        try:
            await asyncio.gather(*(s.start(1, 30) for s in sessions))
            return await asyncio.gather(
                *(
                    s.run(job, (party_noise(alpha, 1 / HONEST, DRAWS), [1] * DRAWS), 120)
                    for s in sessions
                )
            )
        finally:
            await asyncio.gather(*(s.stop() for s in sessions))

    results = asyncio.run(run())
    modulus = results[0].modulus
    num, bad = recombine({r.x: r.num for r in results}, 1, modulus)
    assert bad == []
    den, _ = recombine({r.x: r.den for r in results}, 1, modulus)
    values = []
    for n, d in zip(num, den, strict=True):
        u = n * pow(d, -1, modulus) % modulus
        values.append(u - modulus if u > modulus // 2 else u)
    return np.array(values, dtype=np.int64)


def test_noise_released_through_mpc_has_the_intended_distribution(
    released_noise: np.ndarray,
) -> None:
    alpha = alpha_of(EPSILON, SENSITIVITY)
    statistic, df = _chi_squared(released_noise, alpha, PARTIES / HONEST)
    assert statistic < _critical(df), (statistic, df)
    half = interval(alpha, PARTIES / HONEST)
    coverage = float(np.mean(np.abs(released_noise) <= half))
    assert 0.94 <= coverage <= 0.97  # the stated 95% interval holds (10^4 draws: ±0.7%)


@pytest.mark.parametrize("factor", [0.7, 1.3])
def test_the_distribution_test_rejects_a_scale_30_percent_off(
    released_noise: np.ndarray, factor: float
) -> None:
    # The same draws judged against noise whose scale is 30% smaller or larger.
    wrong = alpha_of(EPSILON, SENSITIVITY) ** (1 / factor)
    statistic, df = _chi_squared(released_noise, wrong, PARTIES / HONEST)
    assert statistic > _critical(df), (statistic, df)


def test_any_honest_majority_of_parts_is_full_discrete_laplace() -> None:
    # Two parties' parts (h = 2) sum to discrete Laplace: P(k) = (1 − α)/(1 + α)·α^|k|.
    alpha = alpha_of(EPSILON, SENSITIVITY)
    draws = np.array(party_noise(alpha, 0.5, 50_000)) + np.array(party_noise(alpha, 0.5, 50_000))
    statistic, df = _chi_squared(draws, alpha, 1.0)
    assert statistic < _critical(df), (statistic, df)
