"""The analyst client: sign a query, send it over mutual TLS, open and recombine the result.

    from engine.client import Client
    with Client("federation/analysts/alice") as client:
        result = client.query("SELECT district, AVG(income) FROM ... GROUP BY district")
        print(result.columns, result.rows)
        frame = result.to_dataframe()        # needs pandas

Each party seals its Shamir shares of the released cells to a fresh X25519 key named in the
signed request; the client opens them, checks that all shares agree, and turns each cell's
exact fraction back into a number. A cell below the dataset's minimum group size comes back
as :data:`SUPPRESSED`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric import x25519

from engine.anchor.bundle import BundleReport, make_bundle, verify_bundle
from engine.cells import KIND_OF, bounds, decode, reconstruct_fraction
from engine.config import AnalystIdentity, load_identity
from engine.errors import AuthError, EngineError, GaveUpError
from engine.having import keep
from engine.noisy_release import Noise, NoisySpec, OutputSpec, noisy_cells
from engine.pki import load_signing_key, read_pem
from engine.request import SignedRequest, new_request, parse, sign
from engine.rpc import jointstat_pb2 as pb
from engine.rpc import jointstat_pb2_grpc as pb_grpc
from engine.rpc.convert import (
    budgets_from_pb,
    catalog_from_pb,
    label_from_pb,
    receipts_from_pb,
    sealed_from_pb,
    signed_to_pb,
)
from engine.rpc.options import channel_options
from engine.rpc.status import error_from_rpc
from engine.sealing import new_result_key, open_sealed
from engine.shamir import recombine
from engine.sql.query import Aggregate
from engine.wording import counted


class _Suppressed:
    """Marker of a cell withheld because its group is below the minimum group size."""

    _instance: _Suppressed | None = None

    def __new__(cls) -> _Suppressed:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SUPPRESSED"

    def __str__(self) -> str:
        return "suppressed"


SUPPRESSED = _Suppressed()
Cell = int | float | str | bool | None | _Suppressed


@dataclass(frozen=True)
class Result:
    """A released query result."""

    query_id: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    seconds: float  # time spent in the federation
    elapsed: float = 0.0  # wall-clock time seen by the client
    suppressed: tuple[tuple[int, int], ...] = field(default=())
    receipt: dict[str, Any] | None = None  # the verified ledger receipt bundle
    anchored: BundleReport | None = None  # what the receipt proves
    release: str = "exact"  # "dp": cells are noisy (see noise)
    noise: tuple[tuple[int, int, Noise], ...] = ()  # dp: (row, column, noise) per cell

    def to_json(self) -> dict[str, Any]:
        """Return ``{"columns", "rows", "suppressed", "query_id", "seconds"}``.

        Suppressed cells are null in ``rows`` and listed as [row, column] in ``suppressed``.
        """
        rows = [[None if v is SUPPRESSED else _json_value(v) for v in row] for row in self.rows]
        body: dict[str, Any] = {
            "query_id": self.query_id,
            "columns": list(self.columns),
            "rows": rows,
            "suppressed": [list(p) for p in self.suppressed],
            "seconds": round(self.seconds, 6),
            "release": self.release,
        }
        if self.release == "dp":
            body["noise"] = [
                {"row": r, "column": c, "sd": _json_value(n.sd), "low": n.low, "high": n.high}
                for r, c, n in self.noise
            ]
        return body

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(
                ["suppressed" if v is SUPPRESSED else ("" if v is None else v) for v in row]
            )
        return out.getvalue()

    def to_table(self) -> str:
        if self.columns == ("plan",):
            return "\n".join(str(row[0]) for row in self.rows)
        noise = {(r, c): n for r, c, n in self.noise}
        cells = [list(self.columns)] + [
            [_text(v) + _noise_text(noise.get((r, c))) for c, v in enumerate(row)]
            for r, row in enumerate(self.rows)
        ]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        for row in cells[1:]:
            lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        lines.append(f"({counted(len(self.rows), 'row')}, {self.elapsed * 1000:.0f} ms)")
        return "\n".join(lines)

    def to_dataframe(self) -> Any:
        """Return a pandas DataFrame with one nullable column per output.

        Column types: integers ``Int64``, other numbers ``Float64``, text ``string``,
        booleans ``boolean`` (a column with no value at all is ``Float64``, one mixing
        text and numbers ``object``). A suppressed cell and a NULL cell are both ``<NA>``;
        :meth:`suppressed_mask` tells them apart, and ``frame.attrs`` holds ``query_id``
        and ``suppressed`` ([row, column] pairs, as in :meth:`to_json`). Raises EngineError
        without pandas.
        """
        pd = _pandas()
        frame = pd.DataFrame(
            {
                c: pd.array(
                    [None if row[c] is SUPPRESSED else row[c] for row in self.rows],
                    dtype=_dtype([row[c] for row in self.rows]),
                )
                for c in range(len(self.columns))
            }
        )
        frame.columns = list(self.columns)  # by position: two outputs may share a name
        frame.attrs["suppressed"] = [list(p) for p in self.suppressed]
        frame.attrs["query_id"] = self.query_id
        return frame

    def suppressed_mask(self) -> Any:
        """Return a boolean DataFrame shaped as :meth:`to_dataframe`: True where suppressed.

        A suppressed cell is one withheld because fewer rows than the dataset's minimum
        group size contribute to it; a NULL cell (an undefined statistic) is False here.
        Raises EngineError without pandas.
        """
        pd = _pandas()
        marked = set(self.suppressed)
        rows = [[(r, c) in marked for c in range(len(self.columns))] for r in range(len(self.rows))]
        return pd.DataFrame(rows, columns=list(self.columns), dtype=bool)


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise EngineError("to_dataframe: got no pandas, want `pip install pandas`") from None
    return pd


def _dtype(values: list[Cell]) -> str:
    """Return the pandas nullable dtype that holds every present value of a column."""
    present = {type(v) for v in values if v is not None and v is not SUPPRESSED}
    if present <= {bool} and present:
        return "boolean"
    if present <= {int} and present:
        return "Int64"
    if present <= {int, float}:
        return "Float64"
    if present <= {str}:
        return "string"
    return "object"


def _json_value(value: Cell) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _noise_text(noise: Noise | None) -> str:
    """Return " [low, high]" (the 95% interval) for a noisy cell, "" for an exact one."""
    if noise is None:
        return ""
    if noise.low is None or noise.high is None:
        return " [unbounded]"
    return f" [{_text(noise.low)}, {_text(noise.high)}]"


def _text(value: Cell) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e15 else f"{value:.6e}"
    return str(value)


class Client:
    """An analyst's connection to one party of the federation."""

    def __init__(self, identity: str | Path, party: str | None = None) -> None:
        self.identity: AnalystIdentity = load_identity(Path(identity))
        federation = self.identity.federation
        target = federation.party(party or self.identity.default_party)
        self._key = load_signing_key(self.identity.signing_key)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read_pem(federation.ca_certificate, "federation CA"),
            private_key=read_pem(self.identity.tls_key, "analyst TLS key"),
            certificate_chain=read_pem(self.identity.tls_certificate, "analyst TLS certificate"),
        )
        options = [*channel_options(), ("grpc.ssl_target_name_override", target.name)]
        self._channel = grpc.secure_channel(target.address, credentials, options=options)
        self._stub = pb_grpc.AnalystStub(self._channel)
        self._party = target.name

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def datasets(self) -> list[dict[str, Any]]:
        """Return the datasets of the federation (schema and policy), as named fields.

        Each item is :meth:`engine.catalog.DatasetInfo.to_listing`. Raises EngineError if
        the party cannot be reached or refuses.
        """
        try:
            reply = self._stub.ListDatasets(pb.ListDatasetsRequest(), timeout=30)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self._party) from None
        spent = budgets_from_pb(reply)
        listed = []
        for d in catalog_from_pb(reply):
            body = d.to_listing()
            if d.budget is not None:
                total, mine = spent.get(d.qualified_name, (0.0, 0.0))
                body["budget_spent"] = total
                body["analyst_budget_spent"] = mine
            listed.append(body)
        return listed

    def query(self, sql: str, timeout: float | None = None) -> Result:
        """Run ``sql`` and return its released result; raise EngineError if refused or failed."""
        signed, private = self.sign(sql)
        return self.send(signed, private, timeout)

    def sign(self, sql: str) -> tuple[SignedRequest, x25519.X25519PrivateKey]:
        """Return a signed request for ``sql`` and the private key that opens its result."""
        private, public = new_result_key()
        request = new_request(self.identity.name, self.identity.federation.name, sql, public)
        return sign(request, self._key), private

    def send(
        self,
        signed: SignedRequest,
        private: x25519.X25519PrivateKey,
        timeout: float | None = None,
    ) -> Result:
        """Send an already signed request and open its result with ``private``."""
        began = time.perf_counter()
        federation = self.identity.federation
        wait = timeout or federation.query_timeout_seconds + 10
        try:
            reply = self._stub.Query(signed_to_pb(signed), timeout=wait)
        except grpc.RpcError as exc:
            error = error_from_rpc(exc, self._party)
            if exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED and not isinstance(
                error, GaveUpError
            ):
                # The federation did not answer before this client's own deadline.
                raise GaveUpError(
                    f"query {signed.query_id}: no answer within {wait:g} s (the client's "
                    "timeout); the federation cancels it if its MPC job had not started, "
                    "else finishes it: see `jointstat ledger log --config <party.toml> "
                    f"--format json` for query {signed.query_id}"
                ) from None
            raise error from None
        if reply.query_id != signed.query_id:
            raise AuthError(f"result: got query id {reply.query_id}, want {signed.query_id}")
        if reply.explanation:
            lines = reply.explanation.splitlines()
            return Result(
                signed.query_id,
                ("plan",),
                tuple((line,) for line in lines),
                0.0,
                time.perf_counter() - began,
            )
        result = decode_result(reply, private, signed.query_id)
        receipt, anchored = None, None
        if reply.HasField("receipts"):
            sealed = [sealed_from_pb(s) for s in reply.shares]
            receipt = make_bundle(
                federation.name, signed.query_id, receipts_from_pb(reply.receipts), sealed
            )
            anchored = verify_bundle(receipt, federation)
            if anchored.analyst != self.identity.name or anchored.sql != signed_sql(signed):
                raise AuthError("receipt: the anchored request is not the one this client sent")
        elif federation.ledger:
            raise AuthError(
                "result: got no ledger receipt, want one (the federation's ledger is on)"
            )
        return dataclasses.replace(
            result, elapsed=time.perf_counter() - began, receipt=receipt, anchored=anchored
        )


def decode_result(reply: pb.QueryResult, private: x25519.X25519PrivateKey, query_id: str) -> Result:
    """Open every party's sealed shares, recombine and decode the cells of ``reply``."""
    columns = list(reply.columns)
    groups = [label_from_pb(row) for row in reply.groups]
    aggregates = [c for c in columns if c.group < 0]
    opened = [open_sealed(private, query_id, sealed_from_pb(s)) for s in reply.shares]
    # Exact: a cell per group and aggregate output; dp: per group and noisy total.
    per_group = len(reply.noisy) if reply.release == "dp" else len(aggregates)
    cells_expected = len(groups) * per_group
    values: dict[str, list[int]] = {"num": [], "den": [], "flag": [], "sign": []}
    modulus = 0
    if cells_expected:
        moduli = {s.modulus for s in opened}
        if len(moduli) != 1:
            raise AuthError("result: parties used different fields, want one field")
        modulus = moduli.pop()
        for name in values:
            by_point = {s.x: getattr(s, name) for s in opened}
            if any(len(v) != cells_expected for v in by_point.values()):
                raise AuthError(
                    f"result: got share vectors of the wrong length, want {cells_expected}"
                )
            values[name], bad = recombine(by_point, reply.threshold, modulus)
            if bad:
                raise AuthError(
                    f"result: shares at points {bad} are inconsistent with the others; "
                    "want every party's share on one polynomial"
                )
    if reply.release == "dp":
        rows, noise = _noisy_rows(reply, columns, groups, values, modulus)
    else:
        rows, noise = _exact_rows(columns, groups, values, modulus), [{} for _ in groups]
    kept = [
        (row, extra)
        for row, extra in zip(rows, noise, strict=True)
        if keep(reply.having, row, lambda v: v is SUPPRESSED)
    ]
    order = [(k.output, k.descending) for k in reply.order_by]
    rows, noise, suppressed = _order_rows(kept, order, reply.limit)
    return Result(
        query_id,
        tuple(c.name for c in columns),
        tuple(rows),
        reply.seconds,
        suppressed=tuple(suppressed),
        release=reply.release or "exact",
        noise=tuple((r, c, n) for r, extra in enumerate(noise) for c, n in sorted(extra.items())),
    )


def _exact_rows(
    columns: list[pb.OutputColumn],
    groups: list[tuple[object, ...]],
    values: dict[str, list[int]],
    modulus: int,
) -> list[tuple[Cell, ...]]:
    """Return the rows of an exact release: each cell's fraction, or SUPPRESSED."""
    rows: list[tuple[Cell, ...]] = []
    cell = 0
    for label in groups:
        row: list[Cell] = []
        for column in columns:
            if column.group >= 0:
                value = label[column.group]
                assert value is None or isinstance(value, int | float | str | bool)
                row.append(value)
                continue
            function = Aggregate(column.function)
            if values["flag"][cell] == 0:
                row.append(SUPPRESSED)
            else:
                row.append(
                    _cell_value(
                        function,
                        values["num"][cell],
                        values["den"][cell],
                        column.decimals,
                        column.second_decimals,
                        values["sign"][cell] != 0,
                        modulus,
                    )
                )
            cell += 1
        rows.append(tuple(row))
    return rows


def _noisy_rows(
    reply: pb.QueryResult,
    columns: list[pb.OutputColumn],
    groups: list[tuple[object, ...]],
    values: dict[str, list[int]],
    modulus: int,
) -> tuple[list[tuple[Cell, ...]], list[dict[int, Noise]]]:
    """Return the rows of a dp release (engine.noisy_release) and each cell's noise."""
    specs = [
        NoisySpec(t.measure, t.component, t.sensitivity, t.epsilon, t.parts) for t in reply.noisy
    ]
    outputs = [
        None if c.group >= 0 else OutputSpec(c.function, c.measure, c.decimals) for c in columns
    ]
    width = len(specs)
    rows: list[tuple[Cell, ...]] = []
    noise: list[dict[int, Noise]] = []
    for g, label in enumerate(groups):
        totals = []
        for i in range(g * width, (g + 1) * width):
            u = values["num"][i] * pow(values["den"][i], -1, modulus) % modulus
            half = modulus // 2
            totals.append(u - modulus if u > half else u)  # a signed integer (den = 1)
        numbers, extra = noisy_cells(outputs, specs, totals)
        row: list[Cell] = []
        for c, column in enumerate(columns):
            if column.group >= 0:
                value = label[column.group]
                assert value is None or isinstance(value, int | float | str | bool)
                row.append(value)
            else:
                row.append(numbers[c])
        rows.append(tuple(row))
        noise.append({c: n for c, n in enumerate(extra) if n is not None})
    return rows, noise


def _cell_value(
    function: Aggregate,
    num: int,
    den: int,
    decimals: int,
    second_decimals: int,
    negative: bool,
    modulus: int,
) -> Cell:
    if den == 0:
        return None
    u = num * pow(den, -1, modulus) % modulus
    num_bits, den_bits = bounds(KIND_OF[function])
    try:
        a, b = reconstruct_fraction(u, modulus, num_bits, den_bits)
    except ValueError:
        raise AuthError("result: a cell is not a valid fraction; want consistent shares") from None
    return decode(function, a, b, decimals, second_decimals, negative)


def _order_rows(
    rows: list[tuple[tuple[Cell, ...], dict[int, Noise]]],
    order: Sequence[tuple[int, bool]],
    limit: int,
) -> tuple[list[tuple[Cell, ...]], list[dict[int, Noise]], list[tuple[int, int]]]:
    """Apply ORDER BY and LIMIT to released rows (each with its cells' noise)."""
    for output, descending in reversed(order):

        def key(
            item: tuple[tuple[Cell, ...], dict[int, Noise]], output: int = output
        ) -> tuple[int, Any]:
            value = item[0][output]
            if value is None or value is SUPPRESSED:
                return (1, 0)
            return (0, value)

        present = [r for r in rows if key(r)[0] == 0]
        missing = [r for r in rows if key(r)[0] == 1]
        rows = sorted(present, key=key, reverse=descending) + missing
    if limit >= 0:
        rows = rows[:limit]
    suppressed = [
        (r, c) for r, (row, _) in enumerate(rows) for c, v in enumerate(row) if v is SUPPRESSED
    ]
    return [row for row, _ in rows], [extra for _, extra in rows], suppressed


def signed_sql(signed: SignedRequest) -> str:
    """Return the SQL text of a signed request."""
    return parse(signed.body).sql
