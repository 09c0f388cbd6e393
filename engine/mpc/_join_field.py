"""Vectors of field elements: fixed-width bytes on the wire, and uniform draws from a stream.

A field element of GF(p) travels as ``⌈log2 p / 8⌉`` little-endian bytes. Vectors are numpy
object arrays of Python ints in [0, p) (MPyC's representation); the conversions go through
64-bit limbs in numpy: for p < 2^64 (MPyC's ``SecInt(32)``) a million elements take about
0.05 s here, against 0.25 s with ``int.from_bytes`` per element.

Uniform draws are exact and positional: element i is the first of the ``⌈log2 p⌉``-bit
candidates at position i of rounds 0, 1, 2, … of a stream that is below p (rejection
sampling per position). Two parties reading the same stream get the same vector, every
element is uniform in GF(p) as long as the stream is, and a party can convert only the
positions it needs. For MPyC's primes (2^k minus a little) round 1 is practically never read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from engine.errors import PeerError

FieldVector = npt.NDArray[np.object_]  # Python ints in [0, p)


def field_width(modulus: int) -> int:
    """Return the bytes of one element of GF(modulus) on the wire."""
    return (modulus.bit_length() + 7) // 8


Rows = npt.NDArray[np.int64] | None  # positions to convert; None for all


def _limbs(payload: bytes, count: int, width: int, rows: Rows) -> npt.NDArray[np.uint64]:
    """Return width-byte integers (those at ``rows`` of ``count``) as 64-bit limbs per row."""
    limbs = (width + 7) // 8
    raw = np.frombuffer(payload, dtype=np.uint8, count=count * width).reshape(count, width)
    if rows is not None:
        raw = raw[rows]
    padded = np.zeros((len(raw), 8 * limbs), dtype=np.uint8)
    padded[:, :width] = raw
    return padded.view("<u8")


def _ints(limbs: npt.NDArray[np.uint64]) -> FieldVector:
    """Return the Python ints whose little-endian 64-bit limbs are the rows of ``limbs``."""
    values: FieldVector = limbs[:, -1].astype(object)
    for j in range(limbs.shape[1] - 2, -1, -1):
        values = (values << 64) | limbs[:, j].astype(object)
    return values


def encode(vectors: Sequence[FieldVector], modulus: int) -> bytes:
    """Return the vectors' elements as fixed-width little-endian integers, concatenated.

    Requires elements in [0, modulus).
    """
    width = field_width(modulus)
    limbs = (width + 7) // 8
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
        values = _ints(_limbs(chunk, length, width, rows))
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
    mask = np.uint64((1 << (modulus.bit_length() - 64 * ((width + 7) // 8 - 1))) - 1)
    wanted = np.arange(length, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
    values = np.empty(len(wanted), dtype=object)
    pending = np.arange(len(wanted))  # indices into ``wanted`` still without a value
    round_ = 0
    while len(pending):
        limbs = _limbs(stream(round_, length * width), length, width, wanted[pending])
        limbs[:, -1] &= mask
        candidates = _ints(limbs)
        below = np.asarray(candidates < modulus, dtype=bool)
        values[pending[below]] = candidates[below]
        pending = pending[~below]
        round_ += 1
    return values
