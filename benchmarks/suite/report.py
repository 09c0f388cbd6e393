"""Write the Markdown report of a results document (results.json)."""

from __future__ import annotations

from typing import Any

METHOD = """\
## How it was measured

- **Secure** times are end to end as the analyst sees them (sign, send over mutual TLS,
  plan, ledger, owners' plaintext steps, MPC, sealed shares, receipt verification): the
  median of the timed runs with [min–max]; a run at 10^6 rows or citizens is timed once.
  Every secure result is checked against DuckDB with `engine.oracle.compare` (column
  "check").
- **DuckDB** is the same SQL over the pooled plaintext in one in-memory DuckDB (the
  physical floor); **ratio** = secure median / DuckDB median, both from this run.
- **Naive MPyC** (`benchmarks/naive_mpyc.py`): 3 processes on loopback secret-share every
  row's value, its square, a filter bit and one-hot group bits as secure arrays and compute
  count, sum and sum of squares per group (joins: an all-pairs matrix of secure equalities
  of the ids, then matrix products); AVG and STDDEV come from the opened totals. Timed from
  the first round trip to the opened result (process start-up and MPC links excluded) and
  checked against DuckDB. The all-pairs join is quadratic, so it runs at small populations
  only: the engine's time at the same size is shown beside it.
- **MB sent per party** is TCP payload from the kernel's `tcp_info.bytes_sent` of every
  socket of the party's daemon and MPC worker (`ss -tinp`, in the party's namespace), read
  before and after the timed runs and divided by the number of runs (order of parties: as
  in federation.toml, registry / tax / social / compute…). **Peak MB** is the sum of
  `VmHWM` of the daemon and its MPC worker, reset through `clear_refs` before the runs
  (the reset sets it to the current resident size, so memory a long-lived process kept
  from an earlier, larger job counts too).
- **Network**: each party in its own Linux network namespace, veth links to a bridge, the
  analysts in a namespace of their own; the round-trip time is emulated per link with
  `tc netem`, or, on a kernel without netem, by a user-space relay that holds every TCP
  chunk for RTT/2 in each direction (the mechanism is named in each row).
- The machine has 2 cores shared with other work: compare ratios within one run.
"""


def _s(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:,.0f} s"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.1f} ms"


def _row(cells: list[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    """Return a Markdown table; a header ending in "#" is a right-aligned number column."""
    names = [h.rstrip("#") for h in header]
    align = ["---:" if h.endswith("#") else "---" for h in header]
    return [_row(list(names)), _row(list(align)), *(_row(r) for r in rows)]


def _secure(figure: dict[str, Any]) -> str:
    if "secure_s" not in figure:
        return f"{figure['status']}: {figure.get('error', '')[:100]}"
    s = figure["secure_s"]
    if s["runs"] == 1:
        return f"{_s(s['median'])} (1 run)"
    return f"{_s(s['median'])} [{_s(s['min'])}–{_s(s['max'])}]"


def _parties(figure: dict[str, Any]) -> tuple[str, str]:
    parties = figure.get("parties") or {}
    sent = " / ".join(f"{p['bytes_per_query'] / 1e6:.2f}" for p in parties.values())
    peak = " / ".join(f"{p['peak_mb']:.0f}" for p in parties.values())
    return sent or "–", peak or "–"


def _check(figure: dict[str, Any]) -> str:
    if figure.get("status") == "ok":
        return "= DuckDB"
    if figure.get("status") == "wrong":
        return "DIFFERS: " + "; ".join(figure.get("problems", []))[:120]
    return str(figure.get("status", "–"))


def _ratio(figure: dict[str, Any]) -> str:
    return f"{figure['ratio']:,.0f}×" if "ratio" in figure else "–"


def _naive_for(naive: list[dict[str, Any]], workload: str, size: int) -> str:
    for row in naive:
        if row["workload"] == workload and row["size"] == size and "seconds" in row:
            return _s(row["seconds"])
    return "–"


def latency_table(body: dict[str, Any]) -> list[str]:
    """Return the tables of a latency section (figures, then naive baselines)."""
    rows: list[list[object]] = []
    for f in body.get("figures", []):
        sent, peak = _parties(f)
        duckdb = _s(f["duckdb_s"]["median"]) if "duckdb_s" in f else "–"
        naive = _naive_for(body.get("naive", []), f["workload"], f["size"])
        rows.append(
            [
                *(f["workload"], f"{f['size']:,}", f"{f.get('rows', 0):,}", _secure(f), duckdb),
                *(_ratio(f), naive, sent, peak, _check(f)),
            ]
        )
    header = ["workload", "size#", "rows read#", "secure", "DuckDB#", "ratio#", "naive MPyC#"]
    lines = _table([*header, "MB sent/query per party", "peak MB per party", "check"], rows)
    naive_rows = body.get("naive", [])
    if not naive_rows:
        return lines
    rows = []
    for n in naive_rows:
        if "seconds" not in n:
            rows.append([n["workload"], f"{n['size']:,}", "–", n["status"], "–", "–", "–"])
            continue
        engine = n.get("engine_s")
        speed = f"{n['seconds'] / engine:.1f}×" if engine else "–"
        sent = " / ".join(f"{mb:.1f}" for mb in n["mb_sent"])
        rows.append(
            [
                *(n["workload"], f"{n['size']:,}", f"{n['rows']:,}", _s(n["seconds"])),
                *(_s(engine), speed, sent, _check(n)),
            ]
        )
    header = ["workload", "size#", "rows read#", "naive MPyC#", "engine (1 run)#", "speed-up#"]
    return [
        *lines,
        "",
        "Naive MPyC baseline beside the engine at the same size (what planning buys):",
        "",
        *_table([*header, "naive MB sent per party", "check"], rows),
    ]


def _throughput(body: dict[str, Any]) -> list[str]:
    figures = body.get("figures", [])
    if not figures:
        return []
    rows: list[list[object]] = []
    for f in figures:
        lat = f["latency_s"]
        rows.append(
            [
                *(f["analysts"], f"{f['queries_per_s']:.1f}"),
                f"{_s(lat['median'])} [{_s(lat['min'])}–{_s(lat['max'])}]",
                *(f"{f['duckdb_queries_per_s']:,.0f}", _ratio(f), _parties(f)[0]),
            ]
        )
    header = ["analysts#", "queries/s#", "latency median [min–max]", "DuckDB queries/s#"]
    return [
        f"Query: `{figures[0]['sql']}` over {figures[0]['rows']:,} rows, sectors in turn; "
        "each analyst a separate process sending queries back to back.",
        "",
        *_table([*header, "DuckDB / secure#", "MB sent/query per party"], rows),
    ]


def _ledger(body: dict[str, Any]) -> list[str]:
    if "appends" not in body:
        return []
    rows: list[list[object]] = [
        [r["batch"], f"{r['entries']:,}", f"{r['appends_per_s']:,.0f}"] for r in body["appends"]
    ]
    on, off = body["query_s"]["on"], body["query_s"]["off"]
    return [
        *_table(["batch#", "entries#", "cosigned appends/s#"], rows),
        "",
        f"Per-query overhead of anchoring (`{body['query']}`, one analyst): ledger on "
        f"{_s(on['median'])} [{_s(on['min'])}–{_s(on['max'])}], off {_s(off['median'])} "
        f"[{_s(off['min'])}–{_s(off['max'])}]: **{body['overhead_s'] * 1000:.1f} ms** per "
        "query (difference of medians).",
    ]


def _parties_table(body: dict[str, Any]) -> list[str]:
    rows: list[list[object]] = []
    for f in body.get("figures", []):
        sent, peak = _parties(f)
        rows.append(
            [
                *(f["parties_count"], f["workload"], f"{f['size']:,}", _secure(f)),
                *(_ratio(f), sent, peak, _check(f)),
            ]
        )
    header = ["parties#", "workload", "size#", "secure", "ratio to DuckDB#"]
    return [
        "Threshold t = 1 at every size: the engine's join fails with the default "
        't = (n−1)/2 ("threshold: got 2, want 1").',
        "",
        *_table([*header, "MB sent/query per party", "peak MB per party", "check"], rows),
    ]


def _network(body: dict[str, Any]) -> list[str]:
    rows: list[list[object]] = []
    for f in body.get("figures", []):
        sent, _ = _parties(f)
        rows.append(
            [
                *(f["network"], f["workload"], f"{f['size']:,}", _secure(f)),
                *(_ratio(f), sent, _check(f)),
            ]
        )
    for m in body.get("missing", []):
        rows.append([f"{m['rtt_ms']:g} ms RTT", "all", "–", f"{m['status']}: {m['error']}"])
    header = ["network", "workload", "size#", "secure", "ratio to DuckDB#"]
    return _table([*header, "MB sent/query per party", "check"], rows)


def _profile(body: dict[str, Any]) -> list[str]:
    lines = [
        "Sampled by py-spy at 50 Hz in every party (daemon and MPC worker; busy threads "
        "only). Self: samples in the function itself; with callees: samples anywhere "
        "below it.",
    ]
    for case in body.get("cases", []):
        lines += ["", f"### {case.get('what', '')}: {_s(case.get('seconds'))}"]
        if "parties" not in case:
            lines += ["", f"{case.get('status')}: {case.get('error', '')}"]
        for name, party in case.get("parties", {}).items():
            if "top" not in party:
                lines += ["", f"{name}: {party.get('error', 'no samples')}"]
                continue
            total = max(party["samples"], 1)
            rows: list[list[object]] = [
                [f"`{frame}`", f"{own / total:.1%}", f"{incl / total:.1%}"]
                for frame, own, incl in party["top"]
            ]
            ours: list[list[object]] = [
                [f"`{frame}`", f"{own / total:.1%}", f"{incl / total:.1%}"]
                for frame, own, incl in party.get("ours", [])
            ]
            lines += [
                "",
                f"**{name}** ({party['samples']:,} samples): most self time, then jointstat's "
                "own functions by time with callees",
                "",
                *_table(["function (module)", "self %#", "with callees %#"], rows),
                "",
                *_table(["jointstat function (module)", "self %#", "with callees %#"], ours),
            ]
    return lines


TITLES = {
    "aggregates": "Aggregates: single agency and cross-region (UNION ALL)",
    "joins": "Joins across agencies (filtered, grouped)",
    "histogram": "Histogram over joined rows",
    "median": "Median",
    "throughput": "Throughput (small queries, ledger on)",
    "ledger": "Ledger",
    "parties": "Number of parties (extra parties compute-only, loopback)",
    "network": "Network: namespaces with emulated round-trip times",
    "profile": "Profile (py-spy in every party during a 3-agency join)",
}
RENDER = {
    "aggregates": latency_table,
    "joins": latency_table,
    "histogram": latency_table,
    "median": latency_table,
    "throughput": _throughput,
    "ledger": _ledger,
    "parties": _parties_table,
    "network": _network,
    "profile": _profile,
}


def targets_table(results: dict[str, Any]) -> list[str]:
    """Return the table of targets against measured figures."""
    rows: list[list[object]] = [
        [t["target"], t["want"], t.get("got", "–"), t["status"]] for t in results["targets"]
    ]
    return _table(["target", "want", "measured", "verdict"], rows)


def write(results: dict[str, Any], plots: list[str]) -> str:
    """Return the Markdown report of ``results``; ``plots`` are PNG names beside it."""
    meta = results["meta"]
    out = [
        f"# jointstat benchmark report — {meta['date']} ({meta['mode']})",
        "",
        f"`{meta['command']}` on {meta['cpus']} cores, Python {meta['python']}, MPyC "
        f"{meta['mpyc']}, commit {meta['commit']}; {meta['seconds'] / 60:.1f} min; load "
        f"average at start {meta['load_start']}."
        + (
            f" Uncommitted changes in the working tree: {', '.join(meta['uncommitted'])}."
            if meta.get("uncommitted")
            else ""
        ),
        "",
        "## Targets (3 parties, loopback)",
        "",
        *targets_table(results),
        "",
    ]
    for name in plots:
        out += [f"![{name}]({name})", ""]
    for key, title in TITLES.items():
        out += [f"## {title}", ""]
        body = results["sections"].get(key)
        if body is None:
            out += ["Not run (not selected with --only).", ""]
        elif body.get("status") in ("failed", "not available"):
            out += [f"{body['status']}: {body.get('error', '')}", ""]
        else:
            out += [*RENDER[key](body), ""]
    out.append(METHOD)
    return "\n".join(out)
