"""The ledger in the daemons: every request, decision and result anchored, cosigned by all.

- :mod:`engine.anchor.keys` — the federation's ledger keys, key ring and quorum;
- :mod:`engine.anchor.party_ledger` — each party's verified mirror and witness;
- :mod:`engine.anchor.writer` — the sequencer's batched appends and cosigning rounds;
- :mod:`engine.anchor.bundle` — the analyst's receipt bundle, verifiable offline;
- :mod:`engine.anchor.history` — who used which dataset, when, for which query.

The ledger library itself (:mod:`ledger`) knows nothing of the engine.
"""
