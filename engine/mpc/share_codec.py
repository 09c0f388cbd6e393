"""Share messages between MPC workers: typed, fixed-width bytes instead of pickles.

MPyC 0.11 marshals the shares of secure arrays with ``pickle`` (``mpc.input``,
``mpc.output``, ``mpc._reshare``) and so does ``mpc.transfer`` (which ``mpc.shutdown``
uses): unpickling a peer's bytes would run whatever code the peer put in them. The MPC
worker (:mod:`engine.mpc._worker`) makes MPyC marshal through :func:`encode` and
:func:`decode` instead; this module does not import MPyC.

A message holds one non-negative Python int, or one numpy array of non-negative integers
(dtype object holding Python ints, as MPyC's field arrays do, or int64), as fixed-width
unsigned little-endian elements after a short header (all integers little-endian):

    offset    size       field
    0         2          magic b"JS"
    2         1          version, 1
    3         1          kind: 1 an int, 2 an object array of ints, 3 an int64 array
    4         1          width: bytes per element, 1..MAX_WIDTH (8 for int64)
    5         1          ndim: 0 for an int, 1..MAX_NDIM for an array
    6         4·ndim     shape, one uint32 per dimension
    6+4·ndim  4          CRC-32 of the header bytes before it
    then      count·width  elements (count = product of the shape; 1 for an int)

:func:`decode` refuses (PeerError, "share message: got X, want Y") anything else: another
magic, version, kind or width, more dimensions, a wrong header checksum (so that a header
with one byte changed never reads as another valid header), a length other than exactly
header + count·width, more than MAX_ELEMENTS elements or MAX_BYTES bytes, and negative
int64 elements. It never calls anything named by the message. It does not know the field:
an element beyond the field's order is not refused here (MPyC reduces it; it changes the
result, which a semi-honest model rules out, but runs no code).

What it reveals: the message's shape and its element width, the byte length of the
largest element (Shamir shares are uniform in the field, so this is about the field).
"""

from __future__ import annotations

import struct
import zlib
from itertools import repeat
from typing import Any

import gmpy2
import numpy as np
import numpy.typing as npt

from engine.errors import PeerError

MAGIC = b"JS"
VERSION = 1
KIND_INT = 1
KIND_OBJECT = 2
KIND_INT64 = 3
MAX_WIDTH = 128  # bytes per element: fields of up to 1024 bits
MAX_NDIM = 8
MAX_ELEMENTS = 1 << 28
MAX_BYTES = 1 << 30  # the control channel's bound too

_FIXED = struct.Struct("<2sBBBB")  # magic, version, kind, width, ndim
_CRC = struct.Struct("<I")
_DIM = struct.Struct("<I")
_INTS = (int, bool)

ObjectArray = npt.NDArray[np.object_]


def encode(value: object) -> bytes:
    """Return the share message of ``value``: a non-negative int or an integer array.

    Arrays may have dtype object (Python ints, as in MPyC's field arrays) or int64; every
    element must be >= 0. Raises ValueError for anything else (a local bug, not a peer's).
    """
    if isinstance(value, np.ndarray):
        if value.ndim < 1 or value.ndim > MAX_NDIM:
            raise ValueError(f"share message: got {value.ndim} dimensions, want 1..{MAX_NDIM}")
        if value.dtype == np.int64:
            return _encode_int64(value)
        if value.dtype == object:
            return _encode_objects(value)
        raise ValueError(f"share message: got dtype {value.dtype}, want object or int64")
    if type(value) in _INTS or isinstance(value, np.integer):
        number: int = int(value)  # type: ignore[call-overload]
        if number < 0:
            raise ValueError("share message: got a negative int, want >= 0")
        width = _width(number)
        return _header(KIND_INT, width, ()) + number.to_bytes(width, "little")
    raise ValueError(f"share message: got a {type(value).__name__}, want an int or an array")


def decode(data: bytes) -> int | npt.NDArray[Any]:
    """Return the int or array in share message ``data`` (see the module docstring).

    Raises PeerError for anything that is not exactly a valid message.
    """
    size = len(data)
    if size > MAX_BYTES:
        raise PeerError(f"share message: got {size} bytes, want <= {MAX_BYTES}")
    if size < _FIXED.size + _CRC.size:
        raise PeerError(f"share message: got {size} bytes, want a header of >= 10")
    magic, version, kind, width, ndim = _FIXED.unpack_from(data, 0)
    if magic != MAGIC:
        raise PeerError(f"share message: got another magic, want {MAGIC!r}")
    if version != VERSION:
        raise PeerError(f"share message: got version {version}, want {VERSION}")
    if kind not in (KIND_INT, KIND_OBJECT, KIND_INT64):
        raise PeerError(f"share message: got kind {kind}, want 1, 2 or 3")
    if not 1 <= width <= MAX_WIDTH or (kind == KIND_INT64 and width != 8):
        want = "8 for int64" if kind == KIND_INT64 else f"1..{MAX_WIDTH}"
        raise PeerError(f"share message: got element width {width}, want {want}")
    if (ndim == 0) != (kind == KIND_INT) or ndim > MAX_NDIM:
        want = "0 for an int" if kind == KIND_INT else f"1..{MAX_NDIM} for an array"
        raise PeerError(f"share message: got {ndim} dimensions, want {want}")
    start = _FIXED.size + _DIM.size * ndim + _CRC.size
    if size < start:
        raise PeerError(f"share message: got {size} bytes, want a header of {start}")
    (crc,) = _CRC.unpack_from(data, start - _CRC.size)
    if crc != zlib.crc32(memoryview(data)[: start - _CRC.size]):
        raise PeerError("share message: got a header whose checksum differs, want it to match")
    shape = tuple(_DIM.unpack_from(data, _FIXED.size + _DIM.size * i)[0] for i in range(ndim))
    count = 1
    for dim in shape:
        count *= dim
    if count > MAX_ELEMENTS:
        raise PeerError(f"share message: got {count} elements, want <= {MAX_ELEMENTS}")
    if size != start + count * width:
        raise PeerError(
            f"share message: got {size} bytes, want {start + count * width} "
            f"({count} elements of {width} bytes after a {start}-byte header)"
        )
    if kind == KIND_INT:
        return int.from_bytes(memoryview(data)[start:], "little")
    if kind == KIND_INT64:
        values = np.frombuffer(data, dtype="<i8", count=count, offset=start)
        if count and int(values.min()) < 0:
            raise PeerError("share message: got a negative int64 element, want >= 0")
        return values.astype(np.int64).reshape(shape)  # a writable copy
    return _decode_objects(data, start, count, width).reshape(shape)


def _width(number: int) -> int:
    width = max(1, (number.bit_length() + 7) // 8)
    if width > MAX_WIDTH:
        raise ValueError(f"share message: got an element of {width} bytes, want <= {MAX_WIDTH}")
    return width


def _header(kind: int, width: int, shape: tuple[int, ...]) -> bytes:
    for dim in shape:
        if dim > 0xFFFF_FFFF:
            raise ValueError(f"share message: got a dimension of {dim}, want < 2**32")
    head = _FIXED.pack(MAGIC, VERSION, kind, width, len(shape))
    head += b"".join(_DIM.pack(dim) for dim in shape)
    return head + _CRC.pack(zlib.crc32(head))


def _check_size(count: int, width: int, shape: tuple[int, ...]) -> None:
    if count > MAX_ELEMENTS or count * width + 10 + 4 * len(shape) > MAX_BYTES:
        raise ValueError(f"share message: got {count} elements of {width} bytes, want fewer")


def _encode_int64(value: npt.NDArray[np.int64]) -> bytes:
    _check_size(value.size, 8, value.shape)
    if value.size and int(value.min()) < 0:
        raise ValueError("share message: got a negative int64 element, want >= 0")
    body = np.ascontiguousarray(value, dtype="<i8").tobytes()
    return _header(KIND_INT64, 8, value.shape) + body


def _encode_objects(value: ObjectArray) -> bytes:
    items = value.reshape(-1).tolist()
    try:
        width = _width(max(items)) if items else 1
        _check_size(len(items), width, value.shape)
        # gmpy2 concatenates the width-byte elements in C (about pickle's speed; int.to_bytes
        # per element takes twice as long). It refuses negative and non-integer elements.
        packed = gmpy2.pack(items, 8 * width)
    except (TypeError, AttributeError):  # a float has no bit_length
        if not all(isinstance(v, int | np.integer) for v in items):
            raise ValueError("share message: got a non-integer element, want ints") from None
        if any(v < 0 for v in items):
            raise ValueError("share message: got a negative element, want >= 0") from None
        return _encode_objects(np.array([int(v) for v in items], dtype=object).reshape(value.shape))
    head = _header(KIND_OBJECT, width, value.shape)
    body: bytes = packed.to_bytes(len(items) * width, "little")
    return head + body


def _decode_objects(data: bytes, start: int, count: int, width: int) -> ObjectArray:
    """Return ``count`` width-byte unsigned little-endian ints at ``start`` as Python ints."""
    if width == 8:
        return np.frombuffer(data, dtype="<u8", count=count, offset=start).astype(object)
    if width < 8:
        raw = np.frombuffer(data, dtype=np.uint8, count=count * width, offset=start)
        padded = np.zeros((count, 8), dtype=np.uint8)
        padded[:, :width] = raw.reshape(count, width)
        return padded.view("<u8")[:, 0].astype(object)
    chunks = np.frombuffer(data, dtype=f"V{width}", count=count, offset=start).tolist()
    values: ObjectArray = np.empty(count, dtype=object)
    from_bytes: Any = int.from_bytes
    values[:] = list(map(from_bytes, chunks, repeat("little")))
    return values
