"""PNG plots of a results document (matplotlib; skipped with a note when it is missing).

- ``latency_vs_rows.png``: secure latency against rows read (log–log), per workload, with
  DuckDB's (dashed) and the naive MPyC baseline's (dotted) at the same sizes;
- ``throughput.png``: queries/s against concurrent analysts, with DuckDB's rate;
- ``parties.png``: latency against the number of parties, per workload;
- ``network.png``: latency per workload under each network condition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLOURS = {
    "aggregate": "tab:blue",
    "union": "tab:cyan",
    "join2": "tab:orange",
    "join3": "tab:red",
    "histogram": "tab:green",
    "median_join": "tab:purple",
    "median_one": "tab:gray",
}


def available() -> bool:
    """Return whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latency(results: dict[str, Any], path: Path) -> bool:
    """Plot latency against rows read; return False when there is nothing to plot."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(10, 5.5))
    drawn = False
    for section in ("aggregates", "joins", "histogram", "median"):
        body = results["sections"].get(section) or {}
        by_workload: dict[str, list[dict[str, Any]]] = {}
        for f in body.get("figures", []):
            if "secure_s" in f:
                by_workload.setdefault(f["workload"], []).append(f)
        small = {  # the engine's time at the naive baseline's (small) sizes, one run
            (n["workload"], n["rows"]): n["engine_s"]
            for n in body.get("naive", [])
            if n.get("engine_s") and n["workload"] in by_workload
        }
        for name, figures in by_workload.items():
            secure = {f["rows"]: f["secure_s"]["median"] for f in figures}
            for (workload, rows), seconds in small.items():
                if workload == name:
                    secure.setdefault(rows, seconds)
            colour = COLOURS.get(name, "black")
            x = sorted(secure)
            axes.plot(x, [secure[r] for r in x], "o-", color=colour, label=f"{name} (secure)")
            figures.sort(key=lambda f: f["rows"])
            axes.plot(
                [f["rows"] for f in figures],
                [f["duckdb_s"]["median"] for f in figures],
                "--",
                color=colour,
                alpha=0.6,
            )
            drawn = True
        naive: dict[str, list[dict[str, Any]]] = {}
        for n in body.get("naive", []):
            if "seconds" in n:
                naive.setdefault(n["workload"], []).append(n)
        for name, rows in naive.items():
            rows.sort(key=lambda r: r["rows"])
            axes.plot(
                [r["rows"] for r in rows],
                [r["seconds"] for r in rows],
                "s:",
                color=COLOURS.get(name, "black"),
                alpha=0.8,
                label=f"{name} (naive MPyC)",
            )
    if not drawn:
        plt.close(figure)
        return False
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("rows read (all tables of the query)")
    axes.set_ylabel("seconds (median, end to end)")
    axes.set_title("Latency against rows read: secure, DuckDB on the pooled plaintext, naive MPyC")
    axes.grid(True, which="both", alpha=0.3)
    axes.plot([], [], "--", color="black", alpha=0.6, label="DuckDB (dashed, same colour)")
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def throughput(results: dict[str, Any], path: Path) -> bool:
    """Plot queries/s against concurrent analysts."""
    figures = (results["sections"].get("throughput") or {}).get("figures", [])
    if not figures:
        return False
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    x = [f["analysts"] for f in figures]
    axes.plot(x, [f["queries_per_s"] for f in figures], "o-", label="secure, ledger on")
    axes.plot(x, [f["duckdb_queries_per_s"] for f in figures], "--", label="DuckDB (one process)")
    axes.axhline(200, color="red", alpha=0.4, linestyle=":", label="target 200/s")
    axes.set_yscale("log")
    axes.set_xscale("log", base=2)
    axes.set_xticks(x, [str(v) for v in x])
    axes.set_xlabel("concurrent analysts (processes)")
    axes.set_ylabel("queries per second")
    axes.set_title("Small-query throughput")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def parties(results: dict[str, Any], path: Path) -> bool:
    """Plot latency against the number of parties, per workload."""
    figures = [
        f for f in (results["sections"].get("parties") or {}).get("figures", []) if "secure_s" in f
    ]
    if not figures:
        return False
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(f["workload"] for f in figures):
        rows = sorted(
            (f for f in figures if f["workload"] == name), key=lambda f: f["parties_count"]
        )
        axes.plot(
            [f["parties_count"] for f in rows],
            [f["secure_s"]["median"] for f in rows],
            "o-",
            color=COLOURS.get(name, "black"),
            label=f"{name} n={rows[0]['size']:,}",
        )
    axes.set_xlabel("parties (3 data holders + compute-only)")
    axes.set_ylabel("seconds (median)")
    axes.set_title("Cost against the number of parties")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def network(results: dict[str, Any], path: Path) -> bool:
    """Plot latency per workload under each network condition (grouped bars)."""
    figures = [
        f for f in (results["sections"].get("network") or {}).get("figures", []) if "secure_s" in f
    ]
    if not figures:
        return False
    plt = _pyplot()
    conditions = list(dict.fromkeys(f["network"] for f in figures))
    workloads = list(dict.fromkeys(f["workload"] for f in figures))
    figure, axes = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(conditions)
    for k, condition in enumerate(conditions):
        values = []
        for name in workloads:
            match = [f for f in figures if f["network"] == condition and f["workload"] == name]
            values.append(match[0]["secure_s"]["median"] if match else 0.0)
        axes.bar([i + k * width for i in range(len(workloads))], values, width, label=condition)
    axes.set_xticks([i + 0.4 - width / 2 for i in range(len(workloads))], workloads)
    axes.set_yscale("log")
    axes.set_ylabel("seconds (median)")
    axes.set_title("Latency by network condition")
    axes.legend(fontsize=7)
    axes.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write_all(results: dict[str, Any], directory: Path) -> list[str]:
    """Write every plot that has data; return the file names written ([] without matplotlib)."""
    if not available():
        return []
    written = []
    for name, draw in (
        ("latency_vs_rows.png", latency),
        ("throughput.png", throughput),
        ("parties.png", parties),
        ("network.png", network),
    ):
        if draw(results, directory / name):
            written.append(name)
    return written
