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
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

import numpy as np

PROTOCOL = 1
MAGIC = b"S2CR"
PREFIX = struct.Struct(">4sIQ")
MAX_HEADER = 1 << 20
MAX_PAYLOAD = 1 << 34
DTYPES: dict[str, np.dtype] = {"u8": np.dtype("<u1"), "u16": np.dtype("<u2"), "f32": np.dtype("<f4")}
CODES = {np.dtype(np.uint8): "u8", np.dtype(np.uint16): "u16", np.dtype(np.float32): "f32"}


class ByteReader(Protocol):
    """What frames are read from: a binary file, a pipe, or the server's stream over a Connection."""

    def read(self, n: int, /) -> bytes: ...


class ByteWriter(Protocol):
    """What frames are written to."""

    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> object: ...


RENDERS = ("none", "image", "target")
TABLES = ("u8", "u16", "knots")


class OptionError(ValueError):
    """An option of a request that the worker cannot take; the message is a sentence for the user."""


def _strength(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise OptionError(f"strength must be a number from 0 to 1.5, not {value!r}.") from None


@dataclass(frozen=True)
class ItemOptions:
    """One layer item's options: the request header's, overridden by the item's (docs/PROTOCOL.md, Options)."""

    variant: str | None = None
    label: str | None = None
    strength: float = 1.0
    render: str = "none"
    tables: tuple[str, ...] = ()
    curves: dict[str, Any] | None = None
    export_curves: str | None = None
    place: dict[str, Any] | None = None

    @classmethod
    def parse(cls, header: dict[str, Any], item: dict[str, Any] | None = None) -> ItemOptions:
        names = [f.name for f in fields(cls)]
        raw = {k: header.get(k) for k in names}
        raw.update({k: v for k, v in (item or {}).items() if k in raw})
        render = raw["render"] or "none"
        if render not in RENDERS:
            raise OptionError(f"render must be none, image or target, not {render!r}.")
        tables = tuple(raw["tables"] or ())
        unknown = [t for t in tables if t not in TABLES]
        if unknown:
            raise OptionError(f"unknown table {unknown[0]!r}; ask for u8, u16 or knots.")
        place = raw["place"]
        if place is not None and not isinstance(place, dict):
            raise OptionError("the placements of a layer must map mask names to [x, y, w, h].")
        strength = 1.0 if raw["strength"] is None else _strength(raw["strength"])
        return cls(
            raw["variant"] or None,
            raw["label"] or None,
            strength,
            render,
            tables,
            raw["curves"] or None,
            raw["export_curves"] or None,
            place,
        )

    def with_curves(self, curves: dict[str, Any], strength: float) -> ItemOptions:
        """The same options with given curves (the dialog's choice): no network, their strength."""
        return replace(self, curves=curves, strength=strength)


@dataclass
class ItemResult:
    """One layer's entry in a ``batch`` or ``dialog`` reply's ``results``."""

    name: str
    ok: bool = True
    curves: dict[str, Any] | None = None
    region: list[int] | None = None
    checked: bool | None = None  # dialog replies only: the layer was ticked
    kind: str | None = None  # failures: error kind and a sentence for the user
    message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # exported, knots

    def failed(self, kind: str, message: str) -> ItemResult:
        self.ok, self.kind, self.message = False, kind, message
        return self

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "ok": self.ok}
        if self.checked is not None:
            out["checked"] = self.checked
        if self.ok or self.checked is not None:
            out.update(curves=self.curves, region=self.region)
        if not self.ok:
            out.update(kind=self.kind, message=self.message)
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class PingReply:
    """A ``ping`` reply: what the worker is and can run."""

    version: str
    protocol: int
    device: str
    variants: list[str]
    default: str | None
    pid: int

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class PredictReply:
    """A ``predict`` reply: the curves, the changed box (None when nothing was rendered) and the tables asked for."""

    curves: dict[str, Any]
    region: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # exported, knots

    def to_json(self) -> dict[str, Any]:
        return {"curves": self.curves, "region": self.region, **self.extra}


@dataclass(frozen=True)
class DialogOptions:
    """What a ``dialog`` request asks of the dialog beside its items (docs/PROTOCOL.md): the preselected variant,
    strength and class, GIMP's window to stay in front of, and the outputs its Result row offers."""

    variant: str | None = None
    strength: float | None = None
    label: str | None = None
    parent_window: int | None = None
    outputs: tuple[tuple[str, str, str], ...] = ()  # (value, label, tooltip)
    output: str | None = None

    @classmethod
    def parse(cls, header: dict[str, Any]) -> DialogOptions:
        strength = None if header.get("strength") is None else _strength(header["strength"])
        parent = header.get("parent_window")
        if isinstance(parent, bool) or not isinstance(parent, int):
            parent = None  # not an X11 id (e.g. a Wayland handle): the dialog opens on its own
        outputs = []
        for o in header.get("outputs") or ():
            if not isinstance(o, (list, tuple)) or not 2 <= len(o) <= 3:
                raise OptionError(f"each output must be [value, label] or [value, label, tooltip], not {o!r}.")
            outputs.append((str(o[0]), str(o[1]), str(o[2]) if len(o) > 2 else ""))
        output = header.get("output") or None  # one the Result row does not offer leaves its first selected
        return cls(header.get("variant") or None, strength, header.get("label") or None, parent, tuple(outputs), output)

    def request(self, layers: list[dict[str, Any]]) -> dict[str, Any]:
        """The request ``s2crnet.dialog.run_dialog`` takes: these options and the layers' pixels."""
        return {
            "layers": layers,
            "variant": self.variant,
            "strength": self.strength,
            "label": self.label,
            "parent_window": self.parent_window,
            "outputs": [list(o) for o in self.outputs],
            "output": self.output,
        }


@dataclass
class DialogReply:
    """A ``dialog`` reply: cancelled, or the user's choice and one ``ItemResult`` a layer."""

    cancel: bool
    variant: str | None = None
    strength: float | None = None
    label: str | None = None
    output: str | None = None
    results: list[ItemResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        if self.cancel:
            return {"cancel": True}
        return {
            "cancel": False,
            "variant": self.variant,
            "strength": self.strength,
            "label": self.label,
            "output": self.output,
            "results": [r.to_json() for r in self.results],
        }


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


def write_frame(stream: ByteWriter, header: dict[str, Any], arrays: list[tuple[str, np.ndarray]] | tuple = ()) -> None:
    for chunk in encode_frame(header, arrays):
        stream.write(chunk)
    stream.flush()


def _read_exact(stream: ByteReader, n: int) -> bytes | bytearray | None:
    buf = bytearray(n)
    view = memoryview(buf)
    pos = 0
    readinto = getattr(stream, "readinto", None)  # files and MessageStream fill the buffer without a copy
    while pos < n:
        got = readinto(view[pos:]) if readinto is not None else None
        if got is None:
            chunk = stream.read(n - pos)
            got = len(chunk)
            view[pos : pos + got] = chunk
        if not got:
            return None
        pos += got
    return bytes(buf) if n < 4096 else buf


def read_prefix(stream: ByteReader) -> tuple[int, int] | None:
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


def read_header(stream: ByteReader, hlen: int) -> dict[str, Any]:
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


def read_payload(stream: ByteReader, plen: int) -> bytearray | bytes:
    data = _read_exact(stream, plen) if plen else b""
    if data is None:
        raise FrameError("the stream ended inside a payload")
    return data


def read_frame(stream: ByteReader) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
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
