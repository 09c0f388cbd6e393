"""Tamper-evident ledger for jointstat (public API assembled at the end of this work)."""
