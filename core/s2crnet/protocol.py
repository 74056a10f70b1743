"""Frames between the GIMP plug-in and the worker: a JSON header plus raw pixel bytes, no image encoding.

::

    b"S2CR" | uint32 BE header length | uint64 BE payload length | header (UTF-8 JSON) | payload

The header always carries ``"protocol": PROTOCOL`` and ``"type"``; ``header["buffers"]`` lists the arrays the
payload holds, in order: ``{"name", "dtype": "u8"|"u16"|"f32", "shape": [H, W] | [H, W, C] | [C, N]}``,
little-endian, C order. The plug-in side (``plugin/bridge.py``) must stay standard-library-only and Python 2.7
compatible, so it has its own copy of this framing; tests/test_worker.py checks the two byte for byte.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

import numpy as np

PROTOCOL = 1
MAGIC = b"S2CR"
PREFIX = struct.Struct(">4sIQ")
MAX_HEADER = 1 << 20
MAX_PAYLOAD = 1 << 34
DTYPES: dict[str, np.dtype] = {"u8": np.dtype("<u1"), "u16": np.dtype("<u2"), "f32": np.dtype("<f4")}
CODES = {np.dtype(np.uint8): "u8", np.dtype(np.uint16): "u16", np.dtype(np.float32): "f32"}


class FrameError(Exception):
    """The stream is not a valid frame (garbage, truncated or oversized); the connection cannot continue."""


class BadFrame(Exception):
    """A complete frame whose buffers cannot be decoded (unknown dtype, wrong size); the connection is fine."""


def encode_frame(header: dict[str, Any], arrays: list[tuple[str, np.ndarray]] | tuple = ()) -> list[bytes]:
    """Prefix, header and buffers as byte chunks; ``arrays`` are (name, ndarray) of a supported dtype."""
    header = dict(header)
    header.setdefault("protocol", PROTOCOL)
    descs, chunks, total = [], [], 0
    for name, arr in arrays:
        a = np.ascontiguousarray(arr)
        code = CODES.get(a.dtype)
        if code is None:
            raise ValueError(f"buffer {name!r} has unsupported dtype {a.dtype}")
        data = a.astype(DTYPES[code], copy=False).tobytes()
        descs.append({"name": name, "dtype": code, "shape": [int(d) for d in a.shape]})
        chunks.append(data)
        total += len(data)
    if descs or "buffers" in header:
        header["buffers"] = descs
    hb = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return [PREFIX.pack(MAGIC, len(hb), total), hb, *chunks]


def write_frame(stream: BinaryIO, header: dict[str, Any], arrays: list[tuple[str, np.ndarray]] | tuple = ()) -> None:
    for chunk in encode_frame(header, arrays):
        stream.write(chunk)
    stream.flush()


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    buf = bytearray(n)
    view = memoryview(buf)
    pos = 0
    while pos < n:
        got = stream.readinto(view[pos:]) if hasattr(stream, "readinto") else None
        if got is None:
            chunk = stream.read(n - pos)
            got = len(chunk)
            view[pos : pos + got] = chunk
        if not got:
            return None
        pos += got
    return bytes(buf) if n < 4096 else buf  # type: ignore[return-value]


def read_prefix(stream: BinaryIO) -> tuple[int, int] | None:
    """(header length, payload length), None at a clean end of stream; FrameError for garbage or oversize."""
    prefix = _read_exact(stream, PREFIX.size)
    if prefix is None:
        return None
    magic, hlen, plen = PREFIX.unpack(bytes(prefix))
    if magic != MAGIC:
        raise FrameError(f"the stream does not start with an S2CRNet frame (got {bytes(prefix)[:4]!r})")
    if hlen > MAX_HEADER:
        raise FrameError(f"a header of {hlen} bytes exceeds the limit of {MAX_HEADER}")
    if plen > MAX_PAYLOAD:
        raise FrameError(f"a payload of {plen} bytes exceeds the limit of {MAX_PAYLOAD} (image too large)")
    return hlen, plen


def read_header(stream: BinaryIO, hlen: int) -> dict[str, Any]:
    hb = _read_exact(stream, hlen)
    if hb is None:
        raise FrameError("the stream ended inside a header")
    try:
        header = json.loads(bytes(hb).decode("utf-8"))
    except ValueError as exc:
        raise FrameError(f"the header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise FrameError("the header is not a JSON object")
    return header


def read_payload(stream: BinaryIO, plen: int) -> bytearray | bytes:
    data = _read_exact(stream, plen) if plen else b""
    if data is None:
        raise FrameError("the stream ended inside a payload")
    return data


def read_frame(stream: BinaryIO) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """(header, {name: array}) or None at end of stream. FrameError: stream unusable; BadFrame: frame unusable."""
    lens = read_prefix(stream)
    if lens is None:
        return None
    header = read_header(stream, lens[0])
    payload = read_payload(stream, lens[1])
    return header, decode_buffers(header, payload)


def decode_buffers(header: dict[str, Any], payload: bytes | bytearray) -> dict[str, np.ndarray]:
    """Zero-copy numpy views of the payload's buffers, checked against their descriptions."""
    out: dict[str, np.ndarray] = {}
    pos = 0
    descs = header.get("buffers") or []
    if not isinstance(descs, list):
        raise BadFrame("'buffers' must be a list of {name, dtype, shape}")
    for desc in descs:
        if not isinstance(desc, dict):
            raise BadFrame("each buffer must be described by {name, dtype, shape}")
        name, code, shape = desc.get("name"), desc.get("dtype"), desc.get("shape")
        if code not in DTYPES:
            raise BadFrame(f"buffer {name!r} has dtype {code!r}; the worker accepts u8, u16 and f32 only")
        if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise BadFrame(f"buffer {name!r} has an invalid shape {shape!r}")
        dt = DTYPES[code]
        n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        if pos + n > len(payload):
            raise BadFrame(f"buffer {name!r} needs {n} bytes but the payload has only {len(payload) - pos} left")
        arr = np.frombuffer(payload, dtype=dt, count=n // dt.itemsize, offset=pos).reshape(shape)
        out[str(name)] = arr.astype(dt.newbyteorder("="), copy=False)
        pos += n
    if pos != len(payload):
        raise BadFrame(f"the payload holds {len(payload)} bytes but the buffers describe {pos}")
    return out
