"""Realistic synthetic data for a demo federation of three agencies.

- population registry ``people``: citizen_id, birth_year, district, sex;
- tax bureau ``income``: citizen_id, income, sector, region (people with taxable income);
- social-security office ``benefits``: citizen_id, pension, medical_claims, region
  (pensioners and people with medical claims);
- a household budget survey run regionally: the registry surveys the north and east, the
  social-security office the south, west and centre — the same schema at two agencies
  (``survey``: household_id, region, household_size, monthly_spending), for UNION ALL.

Every amount has at most two decimals, matching the declared ``decimals = 2``. The data is
seeded and reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.federation_init import DatasetSpec

REGIONS = ("North", "East", "South", "West", "Central")
DISTRICTS = tuple(f"{region}-{k}" for region in REGIONS for k in range(1, 5))
SECTORS = (
    "agriculture",
    "construction",
    "education",
    "finance",
    "health",
    "ict",
    "manufacturing",
    "public",
    "retail",
    "transport",
)
PARTIES = ("registry", "tax", "social")


@dataclass(frozen=True)
class DemoData:
    """Where the generated files are, and the dataset declarations for party.toml."""

    files: dict[str, Path]
    datasets: dict[str, list[DatasetSpec]]


def _write_csv(path: Path, header: list[str], columns: list[np.ndarray], fmt: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        out.write(",".join(header) + "\n")
        rows = zip(*columns, strict=True)
        out.writelines(
            ",".join(f % v for f, v in zip(fmt, row, strict=True)) + "\n" for row in rows
        )


def generate(directory: Path, citizens: int, seed: int = 7) -> DemoData:
    """Write the demo datasets under ``directory/<party>/data`` and return their specs."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.arange(1_000_000, 1_000_000 + citizens))
    birth = np.clip(rng.normal(1972, 19, citizens).round(), 1925, 2008).astype(int)
    district_index = rng.integers(0, len(DISTRICTS), citizens)
    district = np.array(DISTRICTS)[district_index]
    region = np.array([d.split("-")[0] for d in DISTRICTS])[district_index]
    sex = np.where(rng.random(citizens) < 0.51, "F", "M")

    age = 2026 - birth
    # Most adults of working age have taxable income; some pensioners still work.
    chance = np.where(age >= 67, 0.12, 0.86)
    working = (age >= 18) & (rng.random(citizens) < chance)
    sector_probs = np.array([3, 7, 9, 4, 11, 6, 14, 12, 13, 6], dtype=float)
    sector = np.array(SECTORS)[
        rng.choice(len(SECTORS), citizens, p=sector_probs / sector_probs.sum())
    ]
    base = rng.lognormal(10.35, 0.55, citizens) * np.where(sector == "finance", 1.5, 1.0)
    income = np.round(base * (1 + (age - 18) / 120), 2)

    pensioner = age >= 66
    claims_any = rng.random(citizens) < np.clip(0.05 + age / 140, 0, 1)
    pension = np.where(pensioner, np.round(rng.normal(1650, 420, citizens).clip(450), 2) * 12, 0.0)
    claims = np.where(claims_any, np.round(rng.gamma(1.6, 180 + 4 * age, citizens), 2), 0.0)
    benefits = pensioner | claims_any

    households = max(citizens // 25, 40)
    h_region = np.array(REGIONS)[rng.integers(0, len(REGIONS), households)]
    h_size = rng.choice([1, 2, 3, 4, 5, 6], households, p=[0.3, 0.33, 0.15, 0.14, 0.06, 0.02])
    spending = np.round(rng.normal(900, 250, households).clip(200) * h_size**0.6, 2)
    h_ids = np.arange(households) + 1

    files = {
        "registry.people": directory / "registry" / "data" / "people.csv",
        "tax.income": directory / "tax" / "data" / "income.csv",
        "social.benefits": directory / "social" / "data" / "benefits.csv",
        "registry.survey": directory / "registry" / "data" / "survey.csv",
        "social.survey": directory / "social" / "data" / "survey.csv",
    }
    _write_csv(
        files["registry.people"],
        ["citizen_id", "birth_year", "district", "sex"],
        [ids, birth, district, sex],
        ["%d", "%d", "%s", "%s"],
    )
    _write_csv(
        files["tax.income"],
        ["citizen_id", "income", "sector", "region"],
        [ids[working], income[working], sector[working], region[working]],
        ["%d", "%.2f", "%s", "%s"],
    )
    _write_csv(
        files["social.benefits"],
        ["citizen_id", "pension", "medical_claims", "region"],
        [ids[benefits], pension[benefits], claims[benefits], region[benefits]],
        ["%d", "%.2f", "%.2f", "%s"],
    )
    north_east = np.isin(h_region, ["North", "East"])
    for key, rows in (("registry.survey", north_east), ("social.survey", ~north_east)):
        _write_csv(
            files[key],
            ["household_id", "region", "household_size", "monthly_spending"],
            [h_ids[rows], h_region[rows], h_size[rows], spending[rows]],
            ["%d", "%s", "%d", "%.2f"],
        )

    regions: dict[str, object] = {"policy": "group_by", "domain": list(REGIONS)}
    survey_columns: dict[str, str | dict[str, object]] = {
        "household_id": "hidden",
        "region": regions,
        "household_size": "aggregate",
        "monthly_spending": {"policy": "aggregate", "decimals": 2},
    }
    datasets = {
        "registry": [
            DatasetSpec(
                "people",
                "data/people.csv",
                {
                    "citizen_id": "join_key",
                    "birth_year": {"policy": "group_by", "domain": {"from": 1900, "to": 2026}},
                    "district": {"policy": "group_by", "domain": list(DISTRICTS)},
                    "sex": {"policy": "group_by", "domain": ["F", "M"]},
                },
            ),
            DatasetSpec("survey", "data/survey.csv", survey_columns, min_group_size=5),
        ],
        "tax": [
            DatasetSpec(
                "income",
                "data/income.csv",
                {
                    "citizen_id": "join_key",
                    # The tax bureau allows exact order statistics of incomes (MEDIAN in
                    # the demo): an explicit choice, off by default.
                    "income": {"policy": "aggregate", "decimals": 2, "order_statistics": True},
                    "sector": {"policy": "group_by", "domain": list(SECTORS)},
                    "region": regions,
                },
            ),
            # The same file released under differential privacy (noisy, budget on the ledger).
            DatasetSpec(
                "income_dp",
                "data/income.csv",
                {
                    "citizen_id": "join_key",
                    "income": {"policy": "aggregate", "decimals": 2, "bounds": [0, 2_000_000]},
                    "sector": {"policy": "group_by", "domain": list(SECTORS)},
                    "region": regions,
                },
                options=(
                    ("release", "dp"),
                    ("epsilon_per_query", 1.0),
                    ("budget", 20.0),
                    ("analyst_budget", 10.0),
                ),
            ),
        ],
        "social": [
            DatasetSpec(
                "benefits",
                "data/benefits.csv",
                {
                    "citizen_id": "join_key",
                    "pension": {"policy": "aggregate", "decimals": 2},
                    "medical_claims": {"policy": "aggregate", "decimals": 2},
                    "region": regions,
                },
            ),
            DatasetSpec("survey", "data/survey.csv", survey_columns, min_group_size=5),
        ],
    }
    return DemoData(files, datasets)
