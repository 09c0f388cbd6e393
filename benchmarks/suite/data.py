"""The suite's federation directory: datasets of every size, keys and configs.

Tables (all generated from fixed seeds):

- ``tax.rows_<n>``: ``n`` rows of region, sector, x (two decimals), k — bench_engine's
  table, for single-agency aggregates and the small throughput query;
- ``tax.half_<n>`` and ``social.half_<n>``: ``n/2`` rows each of the same schema, for the
  cross-region UNION ALL aggregate over ``n`` rows;
- ``registry.people_<c>``, ``tax.income_<c>``, ``social.benefits_<c>``: the demo agencies'
  data for a population of ``c`` citizens (engine.demo.synthetic), for joins.

Parties beyond the three agencies are compute-only (``compute1``, ``compute2``, ...).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from bench_engine import ROWS_COLUMNS, disable_ledger, write_rows

from engine.demo.synthetic import generate
from engine.federation_init import DatasetSpec, create_federation
from engine.launch import free_port_block

AGENCIES = ("registry", "tax", "social")


@dataclass(frozen=True)
class Fixture:
    """A federation directory and the plaintext files of its datasets."""

    root: Path
    files: dict[str, Path]  # "party.dataset" -> file
    parties: tuple[str, ...]
    analysts: tuple[str, ...]

    def identity(self, index: int = 0) -> Path:
        """Return the identity directory of analyst ``index``."""
        return self.root / "analysts" / self.analysts[index]


def party_names(count: int) -> list[str]:
    """Return the names of ``count`` parties: the three agencies, then compute-only ones."""
    return list(AGENCIES) + [f"compute{i}" for i in range(1, count - len(AGENCIES) + 1)]


def _rows_tables(root: Path, sizes: tuple[int, ...]) -> tuple[dict[str, Path], dict[str, list]]:  # type: ignore[type-arg]
    files: dict[str, Path] = {}
    specs: dict[str, list[DatasetSpec]] = {"tax": [], "social": []}
    for n in sizes:
        for party, name, rows, seed in (
            ("tax", f"rows_{n}", n, n),
            ("tax", f"half_{n}", n // 2, n + 1),
            ("social", f"half_{n}", n - n // 2, n + 2),
        ):
            path = root / party / "data" / f"{name}.csv"
            write_rows(path, rows, seed)
            files[f"{party}.{name}"] = path
            specs[party].append(DatasetSpec(name, f"data/{name}.csv", ROWS_COLUMNS))
    return files, specs


def _population_tables(
    root: Path, populations: tuple[int, ...]
) -> tuple[dict[str, Path], dict[str, list[DatasetSpec]]]:
    files: dict[str, Path] = {}
    specs: dict[str, list[DatasetSpec]] = {party: [] for party in AGENCIES}
    for c in populations:
        scratch = root / ".scratch" / str(c)
        demo = generate(scratch, c, seed=c % 1000 + 5)
        for party in AGENCIES:
            for spec in demo.datasets[party]:
                # The survey is not a population table; income_dp is the demo's dp view of
                # the income file (the benchmarks measure exact releases).
                if spec.name == "survey" or f"{party}.{spec.name}" not in demo.files:
                    continue
                name = f"{spec.name}_{c}"
                target = root / party / "data" / f"{name}.csv"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(demo.files[f"{party}.{spec.name}"]), target)
                files[f"{party}.{name}"] = target
                specs[party].append(replace(spec, name=name, file=f"data/{name}.csv"))
        shutil.rmtree(scratch)
    shutil.rmtree(root / ".scratch", ignore_errors=True)
    return files, specs


def build(
    root: Path,
    *,
    parties: int = 3,
    analysts: int = 1,
    rows: tuple[int, ...] = (),
    citizens: tuple[int, ...] = (),
    ledger: bool = True,
) -> Fixture:
    """Generate the datasets and create a federation of ``parties`` parties in ``root``."""
    files, specs = _rows_tables(root, rows)
    more_files, more_specs = _population_tables(root, citizens)
    files.update(more_files)
    datasets = {p: specs.get(p, []) + more_specs.get(p, []) for p in AGENCIES}
    names = party_names(parties)
    analyst_names = [f"analyst{i}" for i in range(analysts)]
    create_federation(
        root,
        names,
        analyst_names,
        name="bench",
        base_port=free_port_block(len(names)),
        datasets=datasets,
    )
    if not ledger:
        disable_ledger(root)
    return Fixture(root, files, tuple(names), tuple(analyst_names))


def rewrite_addresses(fixture: Fixture, hosts: dict[str, str]) -> dict[str, list[int]]:
    """Point each party's ``address`` and ``mpc_address`` at ``hosts[party]``.

    Ports are kept. Returns each party's ports (gRPC, MPC). Certificates name parties,
    not addresses, so they stay valid.
    """
    path = fixture.root / "federation.toml"
    text = path.read_text()
    ports: dict[str, list[int]] = {}
    blocks = text.split("[[party]]")
    for i, block in enumerate(blocks[1:], start=1):
        name_match = re.search(r'^name = "([a-z0-9_]+)"', block, re.M)
        assert name_match is not None
        name = name_match.group(1)
        found = re.findall(r'^(address|mpc_address) = "[^"]*:(\d+)"', block, re.M)
        ports[name] = [int(port) for _, port in found]
        for key, port in found:
            block = re.sub(
                rf'^{key} = "[^"]*"', f'{key} = "{hosts[name]}:{port}"', block, flags=re.M
            )
        blocks[i] = block
    path.write_text("[[party]]".join(blocks))
    return ports
