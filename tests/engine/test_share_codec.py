"""The share codec on its own: round trips, and every malformed message refused.

Property tests (hypothesis): any array of non-negative ints (object or int64, 1 to 3
dimensions, any width up to the bound) and any non-negative int round-trips exactly; every
truncation, every extension and every change of one header byte is refused with a
PeerError; no pickle is ever accepted.
"""

from __future__ import annotations

import pickle
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import PeerError
from engine.mpc import share_codec
from engine.mpc.share_codec import MAX_WIDTH, decode, encode

BITS = st.sampled_from([1, 7, 8, 31, 63, 64, 65, 100, 138, 255, 8 * MAX_WIDTH])


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:  # type: ignore[type-arg]
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=1, max_size=3)))
    count = int(np.prod(shape))
    if draw(st.booleans()):
        values = draw(st.lists(st.integers(0, 2**63 - 1), min_size=count, max_size=count))
        return np.array(values, dtype=np.int64).reshape(shape)
    bits = draw(BITS)
    values = draw(st.lists(st.integers(0, 2**bits - 1), min_size=count, max_size=count))
    out = np.empty(count, dtype=object)
    out[:] = values
    return out.reshape(shape)


def _same(got: object, want: object) -> bool:
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray)
        return got.dtype == want.dtype and got.shape == want.shape and got.tolist() == want.tolist()
    return type(got) is int and got == want


@settings(max_examples=300, deadline=None)
@given(arrays())
def test_arrays_round_trip(value: np.ndarray) -> None:  # type: ignore[type-arg]
    assert _same(decode(encode(value)), value)


@given(st.integers(0, 2 ** (8 * MAX_WIDTH) - 1))
def test_ints_round_trip(value: int) -> None:
    assert _same(decode(encode(value)), value)


def _header_length(message: bytes) -> int:
    return 10 + 4 * message[5]


@settings(max_examples=150, deadline=None)
@given(st.one_of(arrays(), st.integers(0, 2**200)), st.data())
def test_every_truncation_and_extension_is_refused(value: object, data: st.DataObject) -> None:
    message = encode(value)
    for cut in range(len(message)):
        with pytest.raises(PeerError, match="share message"):
            decode(message[:cut])
    extra = data.draw(st.binary(min_size=1, max_size=16))
    with pytest.raises(PeerError, match="share message"):
        decode(message + extra)


@settings(max_examples=150, deadline=None)
@given(st.one_of(arrays(), st.integers(0, 2**200)), st.integers(1, 255))
def test_every_changed_header_byte_is_refused(value: object, flip: int) -> None:
    message = encode(value)
    for at in range(_header_length(message)):
        changed = bytearray(message)
        changed[at] ^= flip
        with pytest.raises(PeerError, match="share message"):
            decode(bytes(changed))


class _RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, ("raise SystemExit('pickle ran code')",))


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps(_RunsCode()),
        pickle.dumps(np.arange(5, dtype=object)),
        pickle.dumps(7),
        b"",
        b"JS",
    ],
    ids=["code", "array-pickle", "int-pickle", "empty", "magic-only"],
)
def test_pickles_and_scraps_are_refused(payload: bytes) -> None:
    with pytest.raises(PeerError, match="share message"):
        decode(payload)


def _forged(kind: int, width: int, shape: tuple[int, ...], body: bytes) -> bytes:
    """Return a message with a valid checksum over any header fields (a careful forger)."""
    head = struct.pack("<2sBBBB", b"JS", 1, kind, width, len(shape))
    head += b"".join(struct.pack("<I", d) for d in shape)
    return head + struct.pack("<I", zlib.crc32(head)) + body


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (_forged(2, MAX_WIDTH + 1, (1,), b"\x01" * (MAX_WIDTH + 1)), "element width"),
        (_forged(2, 0, (1,), b""), "element width"),
        (_forged(3, 4, (1,), b"\x01" * 4), "element width"),
        (_forged(4, 1, (1,), b"\x01"), "kind"),
        (_forged(1, 1, (1,), b"\x01"), "dimensions"),
        (_forged(2, 1, (), b"\x01"), "dimensions"),
        (_forged(2, 1, (1,) * 9, b"\x01"), "dimensions"),
        (_forged(2, 1, (1 << 16, 1 << 13), b""), "elements"),
        (_forged(3, 8, (1,), (-1).to_bytes(8, "little", signed=True)), "negative"),
        (_forged(2, 2, (3,), b"\x00" * 5), "bytes"),
    ],
)
def test_forged_headers_are_refused(message: bytes, reason: str) -> None:
    with pytest.raises(PeerError, match=reason):
        decode(message)


def test_oversized_messages_are_refused_before_reading_them() -> None:
    class Huge(bytes):
        def __len__(self) -> int:
            return share_codec.MAX_BYTES + 1

    with pytest.raises(PeerError, match="bytes, want <="):
        decode(Huge(b"JS"))


@pytest.mark.parametrize(
    "value",
    [
        -1,
        np.array([1, -2], dtype=object),
        np.array([1, -(2**70)], dtype=object),
        np.array([1.5, 2], dtype=object),
        np.array([1.0, 2.0]),
        np.array(3, dtype=object),
        "text",
        [1, 2],
        2 ** (8 * MAX_WIDTH),
    ],
    ids=["neg-int", "neg", "neg-wide", "float", "float-dtype", "0-d", "str", "list", "too-wide"],
)
def test_encode_refuses_what_it_cannot_represent(value: object) -> None:
    with pytest.raises(ValueError, match="share message"):
        encode(value)


def test_numpy_integers_inside_object_arrays_are_encoded_as_ints() -> None:
    value = np.array([np.int64(3), 2**80], dtype=object)
    assert decode(encode(value)).tolist() == [3, 2**80]  # type: ignore[union-attr]
