"""Vectors of field elements: fixed-width bytes on the wire, and uniform draws from a stream.

See docs/join-protocol.md, "Building blocks".

A field element of GF(p) travels as ``⌈log2 p / 8⌉`` little-endian bytes. Vectors are numpy
object arrays of Python ints in [0, p) (MPyC's representation). Converting bytes to ints is
a large share of a join's time, so it takes the fastest route measured here for a million
elements: for p < 2^64 (MPyC's ``SecInt(32)``) a 64-bit numpy view (0.04 s); for wider
fields ``int.from_bytes`` per element (0.18 s at 18 bytes, against 0.51 s for combining
64-bit limbs with object-array shifts). Encoding goes the other way: 64-bit limbs up to two
limbs, ``int.to_bytes`` per element beyond (0.19 s against 0.25 s at 18 bytes).

Uniform draws are exact and positional: element i is the first of the ``⌈log2 p⌉``-bit
candidates at position i of rounds 0, 1, 2, … of a stream that is below p (rejection
sampling per position). Two parties reading the same stream get the same vector, every
element is uniform in GF(p) as long as the stream is, and a party can convert only the
positions it needs. For MPyC's primes (2^k minus a little) round 1 is practically never read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.errors import PeerError

FieldVector = npt.NDArray[np.object_]  # Python ints in [0, p)


def secure_array(secint: Any, shares: FieldVector) -> Any:
    """Return the MPyC secure array whose shares (at this party) are ``shares`` (in [0, p))."""
    return secint.array(secint.field.array(shares, check=False))


def field_width(modulus: int) -> int:
    """Return the bytes of one element of GF(modulus) on the wire."""
    return (modulus.bit_length() + 7) // 8


Rows = npt.NDArray[np.int64] | None  # positions to convert; None for all


def _rows(payload: bytes, count: int, width: int, rows: Rows) -> npt.NDArray[np.uint8]:
    """Return the width-byte integers (those at ``rows`` of ``count``) as rows of bytes."""
    raw = np.frombuffer(payload, dtype=np.uint8, count=count * width).reshape(count, width)
    return raw if rows is None else raw[rows]


def _ints(raw: npt.NDArray[np.uint8]) -> FieldVector:
    """Return the Python ints whose little-endian bytes are the rows of ``raw``."""
    count, width = raw.shape
    if width <= 8:
        padded = np.zeros((count, 8), dtype=np.uint8)
        padded[:, :width] = raw
        return padded.view("<u8")[:, 0].astype(object)
    data = raw.tobytes()
    from_bytes = int.from_bytes
    values: FieldVector = np.empty(count, dtype=object)
    values[:] = [from_bytes(data[i : i + width], "little") for i in range(0, count * width, width)]
    return values


def encode(vectors: Sequence[FieldVector], modulus: int) -> bytes:
    """Return the vectors' elements as fixed-width little-endian integers, concatenated.

    Requires elements in [0, modulus).
    """
    width = field_width(modulus)
    limbs = (width + 7) // 8
    if limbs > 2:
        return b"".join(
            value.to_bytes(width, "little") for vector in vectors for value in vector.tolist()
        )
    parts = []
    for vector in vectors:
        words = np.empty((len(vector), limbs), dtype="<u8")
        rest = vector
        for j in range(limbs - 1):
            words[:, j] = rest & 0xFFFF_FFFF_FFFF_FFFF
            rest = rest >> 64
        words[:, -1] = rest  # below 2^64: the elements are below 2^(8·width)
        parts.append(words.view(np.uint8).reshape(len(vector), 8 * limbs)[:, :width].tobytes())
    return b"".join(parts)


def decode(
    payload: bytes, count: int, length: int, modulus: int, what: str, rows: Rows = None
) -> list[FieldVector]:
    """Return ``count`` vectors of ``length`` elements of GF(modulus) from ``payload``.

    With ``rows``, return only those positions of each vector. Raises PeerError if the
    payload has the wrong size or holds a (returned) value >= ``modulus``.
    """
    width = field_width(modulus)
    if len(payload) != count * length * width:
        raise PeerError(f"{what}: got {len(payload)} bytes, want {count * length * width}")
    vectors = []
    for c in range(count):
        chunk = payload[c * length * width : (c + 1) * length * width]
        values = _ints(_rows(chunk, length, width, rows))
        if len(values) and max(values) >= modulus:
            raise PeerError(f"{what}: got a value >= the field order, want field elements")
        vectors.append(values)
    return vectors


def uniform(
    stream: Callable[[int, int], bytes], length: int, modulus: int, rows: Rows = None
) -> FieldVector:
    """Return uniform elements of GF(modulus) at positions ``rows`` (default all) of ``length``.

    ``stream(round, size)`` returns ``size`` bytes of round ``round`` (0, 1, …) of one fixed
    family of streams. Requires modulus >= 2.
    """
    width = field_width(modulus)
    top = np.uint8((1 << (modulus.bit_length() - 8 * (width - 1))) - 1)  # of the last byte
    wanted = np.arange(length, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
    values = np.empty(len(wanted), dtype=object)
    pending = np.arange(len(wanted))  # indices into ``wanted`` still without a value
    round_ = 0
    while len(pending):
        raw = _rows(stream(round_, length * width), length, width, wanted[pending])  # a copy
        raw[:, -1] &= top
        candidates = _ints(raw)
        below = np.asarray(candidates < modulus, dtype=bool)
        values[pending[below]] = candidates[below]
        pending = pending[~below]
        round_ += 1
    return values
