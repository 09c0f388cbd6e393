"""Errors raised by the engine.

Every error the engine raises derives from :class:`EngineError`; its message names what
was wrong and what was expected ("what: got X, want Y") and never contains data values,
shares or keys. The gRPC status code of each class is chosen in one place,
:mod:`engine.rpc.status`, and the CLI maps them to exit codes in :mod:`engine.cli`.

    EngineError
    ├── ConfigError          a federation/party/identity file or key is missing or invalid
    ├── QueryError           the SQL is malformed or names unknown tables/columns
    │   ├── CatalogMissError a table or column the catalog does not list (it may be stale)
    │   └── UnsupportedError a valid SQL construct that jointstat does not support yet
    ├── PolicyError          the query is well-formed but a dataset policy forbids it
    ├── AuthError            bad signature, unknown analyst or party, replayed nonce, stale request
    ├── DataError            an owner's local data cannot be used (missing file, bad values)
    ├── CapacityError        a request or computation exceeds a size limit (overflow risk)
    ├── GaveUpError          the analyst's deadline passed (the message says what becomes
    │                        of the query: cancelled, or finishing with its id)
    ├── RequestError         a request's bytes are not the message its method takes
    └── PeerError            a party failed, or the MPC session broke mid-query
        └── UnreachableError a party could not be reached at all (nothing was delivered)
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error raised by the engine."""


class ConfigError(EngineError):
    """A configuration file, certificate or key is missing or invalid."""


class QueryError(EngineError):
    """The SQL text is malformed or refers to unknown tables or columns."""


class CatalogMissError(QueryError):
    """The SQL names a table or column the federation catalog does not list, or lists as
    unavailable (a party that plans with a cached catalog refreshes it and plans again)."""


class UnsupportedError(QueryError):
    """The SQL is valid but uses a construct jointstat does not support yet."""


class PolicyError(EngineError):
    """A dataset's policy, or the analyst's grants, forbid the query."""


class AuthError(EngineError):
    """Authentication failed: signature, identity, freshness or replay."""


class DataError(EngineError):
    """An owner's local data cannot be read or does not match its declared schema."""


class CapacityError(EngineError):
    """A request or computation exceeds a size limit of the engine."""


class GaveUpError(EngineError):
    """The analyst stopped waiting (deadline or disconnect) before the query ended."""


class RequestError(EngineError):
    """A request's bytes do not decode as the message its RPC method takes."""


class PeerError(EngineError):
    """Another party is unreachable or failed while the query ran."""


class UnreachableError(PeerError):
    """A party could not be reached at all; the call was not delivered."""
