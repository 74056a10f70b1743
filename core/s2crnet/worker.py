"""The model process the GIMP plug-ins talk to: ``python -m s2crnet.worker`` (project venv).

Why a process: GIMP's Python may not import torch or numpy, and loading the network once per layer would be
slow. The worker loads torch once (CUDA when present, else CPU; ``S2CRNET_DEVICE`` overrides), keeps one
:class:`~s2crnet.engine.Engine`, and answers requests on stdin/stdout until ``quit`` or end of input.
stdout carries frames only (anything printed goes to stderr); logs go to stderr. The engine loads in a thread
while the first request's pixels arrive. The plug-ins normally reach the same request handling through the
user's long-lived worker, :mod:`s2crnet.server`; this per-call process is their fallback.

The requests, options, buffers and replies are described once, in docs/PROTOCOL.md; the framing is
:mod:`s2crnet.protocol`. :func:`place` puts a mask buffer sent at another size onto the image's grid.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from typing import Any

import numpy as np

from s2crnet import protocol
from s2crnet.curves import Curves
from s2crnet.errors import BadInput, S2CRNetError
from s2crnet.protocol import (
    PROTOCOL,
    BadFrame,
    ByteReader,
    ByteWriter,
    DialogOptions,
    DialogReply,
    FrameError,
    ItemOptions,
    ItemResult,
    OptionError,
    PingReply,
    PredictReply,
)

log = logging.getLogger("s2crnet.worker")
MAX_PIXELS = 1 << 28  # 268 MP per buffer: beyond this a request would exhaust memory rather than fail clearly
INSTALL_HINT = "python3 install.py"


DISPLAY_VARS = ("DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "QT_QPA_PLATFORM")


class ProtocolMismatch(S2CRNetError):
    kind = "protocol"


class OtherDisplay(S2CRNetError):
    """A long-lived worker already shows its dialogs on another display (Qt allows one per process): the plug-in
    then asks a worker of its own."""

    kind = "display"


def _weights_u8like(m: np.ndarray) -> np.ndarray:
    if m.dtype == np.uint8:
        return m.astype(np.float32) * (1.0 / 255.0)
    if m.dtype == np.uint16:
        return m.astype(np.float32) * (1.0 / 65535.0)
    return np.clip(m.astype(np.float32), 0.0, 1.0)


def place(m: np.ndarray, rect: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    """A mask buffer sent smaller or elsewhere than the image (a GIMP thumbnail of the layer, its layer mask or the
    selection) put onto the image's pixel grid: ``rect`` = [x, y, w, h] is where the buffer's full extent lands,
    in image pixels (fractions allowed); 0 outside it. Float weights in [0, 1]."""
    try:
        x, y, w, h = (float(v) for v in rect)
    except (TypeError, ValueError):
        raise BadInput(f"the placement of a mask of layer {name!r} must be [x, y, w, h], not {rect!r}.") from None
    if not (w > 0 and h > 0):
        raise BadInput(f"the placement of a mask of layer {name!r} has no area ({rect!r}).")
    import cv2

    src = _weights_u8like(m)
    sh, sw = src.shape[:2]
    sx, sy = w / sw, h / sh
    # pixel centres: source pixel i covers [x + i·sx, x + (i+1)·sx), its centre lands at x + (i + 0.5)·sx − 0.5
    mat = np.array([[sx, 0.0, x + 0.5 * sx - 0.5], [0.0, sy, y + 0.5 * sy - 0.5]], dtype=np.float32)
    interp = cv2.INTER_AREA if sx < 1 and sy < 1 else cv2.INTER_LINEAR
    if interp == cv2.INTER_AREA:  # warpAffine has no area filter: shrink first, then place
        small = (max(1, round(w)), max(1, round(h)))
        src = cv2.resize(src, small, interpolation=cv2.INTER_AREA)
        mat[0, 0], mat[1, 1] = w / small[0], h / small[1]
        mat[0, 2], mat[1, 2] = x + 0.5 * mat[0, 0] - 0.5, y + 0.5 * mat[1, 1] - 0.5
    out = cv2.warpAffine(
        src, mat, (shape[1], shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0
    )
    return np.clip(out, 0.0, 1.0)


def _mask(
    bufs: dict[str, np.ndarray],
    p: str,
    name: str,
    shape: tuple[int, int] | None = None,
    placements: dict[str, Any] | None = None,
) -> np.ndarray:
    """The item's foreground mask: ``mask`` as sent (so ``harmonize`` sees exactly it), or the product with
    ``mask1``, ``mask2``… as float weights; a buffer named in ``placements`` is first put onto the image's grid
    (``shape``) by :func:`place`."""
    if p + "mask" not in bufs:
        raise BadInput(f"layer {name!r} was sent without a mask; mark the foreground with a layer mask or selection.")
    placements = placements or {}

    def get(key: str) -> np.ndarray:
        m = bufs[p + key]
        if m.ndim == 3 and m.shape[2] in (2, 4):
            m = m[..., -1]  # a layer's own RGBA (at canvas position, or placed): its alpha is the foreground
        if key in placements and shape is not None:
            m = place(m, placements[key], shape, name)
        return m

    m = get("mask")
    extra = sorted(k[len(p) :] for k in bufs if k.startswith(p + "mask") and k[len(p) + 4 :].isdigit())
    if not extra:
        return m
    w = _weights_u8like(m)
    for k in extra:
        e = get(k)
        if e.shape != m.shape:
            raise BadInput(f"the masks of layer {name!r} differ in size ({e.shape} vs {m.shape}).")
        w = w * _weights_u8like(e)
    return w


def _check_size(arr: np.ndarray, name: str) -> None:
    if arr.ndim >= 2 and arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise BadInput(
            f"{name} is {arr.shape[1]}×{arr.shape[0]} pixels, more than the worker handles "
            f"({MAX_PIXELS // 1_000_000} MP); harmonize a smaller layer."
        )


class Worker:
    """Request handling; ``out`` is the binary stream replies go to.

    The engine (torch import, then the default network) loads in a thread from the start, so a cold worker reads
    the first request's pixels while torch loads; requests that need the engine wait for it. ``engine``: an
    already loaded Engine to share (the per-user server keeps one for all connections).
    """

    def __init__(self, out: ByteWriter, device: str | None = None, engine: Any = None, warm_up: bool = True) -> None:
        self.out = out
        self.req_id: Any = None
        self.display: dict[str, str] | None = None  # the display the dialog's QApplication was made on
        self._engine = engine
        self._engine_error: BaseException | None = None
        self._ready = threading.Event()
        if engine is not None:
            self._ready.set()
        else:
            device = device or os.environ.get("S2CRNET_DEVICE") or None
            threading.Thread(target=self._load, args=(device, warm_up), name="s2crnet-load", daemon=True).start()

    def _load(self, device: str | None, warm_up: bool) -> None:
        """Requests wait for all of this (``engine``): importing the model package from two threads at once can
        hand one of them a half-initialised module."""
        t0 = time.perf_counter()
        try:
            from s2crnet.engine import Engine

            self._engine = Engine(device)
            log.info("engine on %s in %.2f s", self._engine.device, time.perf_counter() - t0)
            if warm_up:
                try:
                    from s2crnet import weights

                    self._engine.load(weights.default_variant())
                    log.info("default network loaded after %.2f s", time.perf_counter() - t0)
                except Exception as exc:  # missing weights: the request that needs them reports it
                    log.info("no network preloaded (%s)", exc)
        except BaseException as exc:  # e.g. S2CRNET_DEVICE=cuda without a GPU: every request will say so
            self._engine_error = exc
        finally:
            self._ready.set()

    @property
    def engine(self) -> Any:
        self._ready.wait()
        if self._engine is None:
            raise self._engine_error or S2CRNetError("the worker could not start its engine.")
        return self._engine

    # -- replies ---------------------------------------------------------------------------------------------
    def reply(self, type_: str, fields: dict[str, Any] | None = None, arrays: list | tuple = ()) -> None:
        header = {"type": type_, "id": self.req_id, **(fields or {})}
        protocol.write_frame(self.out, header, arrays)

    def progress(self, fraction: float, text: str) -> None:
        self.reply("progress", {"fraction": float(min(max(fraction, 0.0), 1.0)), "text": text})

    def error(self, kind: str, message: str) -> None:
        self.reply("error", {"kind": kind, "message": message})

    # -- one layer item -----------------------------------------------------------------------------------
    def _options(self, header: dict[str, Any], item: dict[str, Any]) -> ItemOptions:
        try:
            return ItemOptions.parse(header, item)
        except OptionError as exc:
            raise BadInput(str(exc)) from None

    def _curves(self, image: np.ndarray, mask: np.ndarray, opts: ItemOptions) -> Curves:
        if opts.curves:
            return Curves.from_dict(opts.curves).with_strength(opts.strength)
        name = self.engine.resolve_variant(opts.variant)
        if not self.engine.is_loaded(name):
            self.progress(0.05, "Loading the S2CRNet network…")
        return self.engine.predict_curves(image, mask, name, opts.label, opts.strength)

    def _render(
        self,
        bufs: dict[str, np.ndarray],
        p: str,
        name: str,
        image: np.ndarray,
        mask: np.ndarray,
        curves: Curves,
        opts: ItemOptions,
    ) -> tuple[dict[str, Any], list[tuple[str, np.ndarray]]]:
        from s2crnet.engine import render_box, render_visible

        fields: dict[str, Any] = {"curves": curves.to_dict(), "region": None}
        if opts.export_curves:
            try:
                fields["exported"] = str(curves.save(opts.export_curves))
            except OSError as exc:
                raise BadInput(
                    f"cannot write the curves to {opts.export_curves} ({exc.strerror or exc}); "
                    "choose a folder you can write to."
                ) from None
        arrays: list[tuple[str, np.ndarray]] = []
        out, box = None, None
        if opts.render == "image":
            out, box = render_box(image, mask, curves)
        elif opts.render == "target":
            if p + "target" not in bufs:
                raise BadInput(f"layer {name!r}: render 'target' needs a target buffer.")
            target = bufs[p + "target"]
            _check_size(target, f"layer {name!r}")
            out, box = render_visible(target, bufs.get(p + "target_mask"), curves)
        if out is not None and box is not None:
            arrays.append((p + "pixels", out))
            fields["region"] = list(box)
        for t in opts.tables:
            if t == "u8":
                arrays.append((p + "lut_u8", curves.lut_u8()))
            elif t == "u16":
                arrays.append((p + "lut_u16", curves.lut_u16()))
            elif t == "knots":
                fields["knots"] = curves.knots().tolist()
            else:
                raise BadInput(f"unknown table {t!r}; ask for u8, u16 or knots.")
        return fields, arrays

    def _item_inputs(
        self, bufs: dict[str, np.ndarray], p: str, name: str, placements: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        if p + "image" not in bufs:
            raise BadInput(f"layer {name!r} was sent without pixels.")
        image = bufs[p + "image"]
        _check_size(image, f"layer {name!r}")
        if placements is not None and not isinstance(placements, dict):
            raise BadInput(f"the placements of layer {name!r} must map mask names to [x, y, w, h].")
        return image, _mask(bufs, p, name, image.shape[:2], placements)

    def run_item(
        self, header: dict[str, Any], bufs: dict[str, np.ndarray], p: str, item: dict[str, Any]
    ) -> tuple[dict[str, Any], list[tuple[str, np.ndarray]]]:
        name = str(item.get("name") or "layer")
        opts = self._options(header, item)
        image, mask = self._item_inputs(bufs, p, name, opts.place)
        curves = self._curves(image, mask, opts)
        return self._render(bufs, p, name, image, mask, curves, opts)

    # -- requests ----------------------------------------------------------------------------------------
    def do_ping(self, header: dict[str, Any], bufs: dict[str, np.ndarray]) -> None:
        from s2crnet import __version__, weights

        variants = weights.available_variants()
        default = weights.default_variant() if variants else None
        self.reply("ok", PingReply(__version__, PROTOCOL, self.engine.device, variants, default, os.getpid()).to_json())

    def do_predict(self, header: dict[str, Any], bufs: dict[str, np.ndarray]) -> None:
        self.progress(0.0, "Harmonizing…")
        fields, arrays = self.run_item(header, bufs, "", header)
        reply = PredictReply(fields.pop("curves"), fields.pop("region"), fields)
        self.reply("ok", reply.to_json(), arrays)

    def _items(self, header: dict[str, Any]) -> list[dict[str, Any]]:
        items = header.get("items")
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise BadInput("the request lists no layers; select at least one layer.")
        return items

    def do_batch(self, header: dict[str, Any], bufs: dict[str, np.ndarray]) -> None:
        items = self._items(header)
        results: list[ItemResult] = []
        arrays: list[tuple[str, np.ndarray]] = []
        n = len(items)
        for i, item in enumerate(items):
            name = str(item.get("name") or f"layer {i + 1}")
            self.progress(i / n, f"Harmonizing {name} ({i + 1}/{n})…")
            res = ItemResult(name)
            try:
                fields, arr = self.run_item(header, bufs, f"{i}.", item)
                res.curves, res.region = fields.pop("curves"), fields.pop("region")
                res.extra = fields
                arrays += arr
            except Exception as exc:  # one layer's failure is reported; the others go on
                res.failed(*describe(exc))
            results.append(res)
        self.progress(1.0, "Done")
        self.reply("ok", {"results": [r.to_json() for r in results]}, arrays)

    def do_dialog(self, header: dict[str, Any], bufs: dict[str, np.ndarray]) -> None:
        try:
            from s2crnet.dialog import run_dialog
        except ImportError as exc:
            raise S2CRNetError(
                f"the Harmonize dialog is not available in this installation ({exc}); "
                f"re-run `{INSTALL_HINT}`, or run the procedure non-interactively."
            ) from None
        items = self._items(header)
        try:
            options = DialogOptions.parse(header)
        except OptionError as exc:
            raise BadInput(str(exc)) from None
        self._use_display(header.get("display"))
        layers: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            name = str(item.get("name") or f"layer {i + 1}")
            image, mask = self._item_inputs(bufs, f"{i}.", name, item.get("place", header.get("place")))
            layers.append({"name": name, "image": image, "mask": mask})
        answer = run_dialog(options.request(layers), self.engine)
        if answer.get("cancel", True):
            self.reply("ok", DialogReply(cancel=True).to_json())
            return
        results: list[ItemResult] = []
        arrays: list[tuple[str, np.ndarray]] = []
        entries = answer.get("layers") or []
        for i, item in enumerate(items):
            entry = entries[i] if i < len(entries) else {}
            name = layers[i]["name"]
            res = ItemResult(name, checked=bool(entry.get("checked")), curves=entry.get("curves"))
            if entry.get("error") or (res.checked and not entry.get("curves")):
                res.failed("bad-input", entry.get("error") or "no curves were predicted.")
            elif res.checked:
                try:
                    curves = Curves.from_dict(entry["curves"])
                    opts = self._options(header, item).with_curves(entry["curves"], curves.strength)
                    fields, arr = self._render(bufs, f"{i}.", name, layers[i]["image"], layers[i]["mask"], curves, opts)
                    res.curves, res.region = fields.pop("curves"), fields.pop("region")
                    res.extra = fields
                    arrays += arr
                except Exception as exc:
                    res.failed(*describe(exc))
            results.append(res)
        reply = DialogReply(
            False, answer.get("variant"), answer.get("strength"), answer.get("label"), answer.get("output"), results
        )
        self.reply("ok", reply.to_json(), arrays)

    def _use_display(self, asked: Any) -> None:
        """Show the dialog where the asking GIMP is (``display``: its DISPLAY, WAYLAND_DISPLAY… values).

        The first dialog fixes the process's display; a later request for another one gets OtherDisplay."""
        if not isinstance(asked, dict):
            return
        wanted = {k: str(asked[k]) for k in DISPLAY_VARS if asked.get(k)}
        if self.display is None:
            for k in DISPLAY_VARS:
                if k in wanted:
                    os.environ[k] = wanted[k]
                else:
                    os.environ.pop(k, None)
            self.display = wanted
        elif wanted != self.display:
            raise OtherDisplay(
                f"this worker shows its dialogs on {self.display or 'no display'}, not on {wanted or 'no display'}."
            )

    def handle(self, header: dict[str, Any], bufs: dict[str, np.ndarray]) -> bool:
        """Answer one request; False when the worker should stop."""
        self.req_id = header.get("id")
        t0 = time.perf_counter()
        kind = header.get("type")
        try:
            if header.get("protocol") != PROTOCOL:
                raise ProtocolMismatch(
                    f"the GIMP plug-in speaks protocol {header.get('protocol')} but the worker "
                    f"speaks {PROTOCOL}; re-run `{INSTALL_HINT}` to update both."
                )
            if kind == "quit":
                self.reply("ok", {})
                return False
            handler = {
                "ping": self.do_ping,
                "predict": self.do_predict,
                "batch": self.do_batch,
                "dialog": self.do_dialog,
            }.get(str(kind))
            if handler is None:
                raise ProtocolMismatch(
                    f"the worker does not know the request {kind!r}; re-run `{INSTALL_HINT}` "
                    "so plug-in and worker match."
                )
            self._ready.wait()  # no handler imports the model package while the loading thread does
            handler(header, bufs)
        except Exception as exc:
            self.error(*describe(exc))
        log.info("%s #%s done in %.1f ms", kind, self.req_id, (time.perf_counter() - t0) * 1000)
        return True


def describe(exc: BaseException) -> tuple[str, str]:
    """(kind, user sentence) for any exception; unexpected ones are logged with their traceback."""
    if isinstance(exc, S2CRNetError):
        return exc.kind, str(exc)
    if isinstance(exc, BadFrame):
        return "bad-input", f"the worker cannot read the layer data: {exc}."
    if isinstance(exc, MemoryError):
        return "bad-input", "the image is too large for the memory available; harmonize a smaller layer."
    log.error("unexpected error:\n%s", traceback.format_exc())
    return "internal", (
        f"the worker hit an unexpected error ({type(exc).__name__}: {exc}); the details are in "
        "GIMP's error console. Please report it."
    )


def serve(inp: ByteReader, out: ByteWriter, worker: Worker | None = None) -> int:
    """Read requests until quit or end of input; exit status 0, or 2 after an unreadable stream.

    ``worker``: one to reuse (the per-user server passes its own, with replies going to ``out``)."""
    if worker is None:
        worker = Worker(out)
        log.info("reading requests (pid %d)", os.getpid())
    else:
        worker.out = out
    while True:
        try:
            lens = protocol.read_prefix(inp)
            if lens is None:
                return 0
            header = protocol.read_header(inp, lens[0])
            worker.req_id = header.get("id")
            descs = header.get("buffers") or []
            too_big = _too_big(descs)
            if too_big:
                worker.error("bad-input", too_big)
                _discard(inp, lens[1])
                continue
            payload = protocol.read_payload(inp, lens[1])
        except FrameError as exc:
            worker.req_id = None
            kind = "bad-input" if "too large" in str(exc) else "protocol"
            message = (
                f"The image is too large to send to the worker ({exc}); harmonize a smaller layer."
                if kind == "bad-input"
                else f"The worker received data it cannot read ({exc}); re-run `{INSTALL_HINT}` so plug-in and "
                "worker match."
            )
            try:
                worker.error(kind, message)
            except OSError:
                pass
            log.error("stopping: %s", exc)
            return 2
        try:
            bufs = protocol.decode_buffers(header, payload)
        except BadFrame as exc:
            worker.req_id = header.get("id")
            worker.error("bad-input", f"The worker cannot read the layer data: {exc}.")
            continue
        if not worker.handle(header, bufs):
            return 0


def _too_big(descs: Any) -> str | None:
    if not isinstance(descs, list):
        return None
    for d in descs:
        shape = d.get("shape") if isinstance(d, dict) else None
        if isinstance(shape, list) and len(shape) >= 2 and all(isinstance(s, int) for s in shape[:2]):
            if shape[0] * shape[1] > MAX_PIXELS:
                return (
                    f"the layer is {shape[1]}×{shape[0]} pixels, more than the worker handles "
                    f"({MAX_PIXELS // 1_000_000} MP); harmonize a smaller layer."
                )
    return None


def _discard(inp: ByteReader, n: int) -> None:
    while n > 0:
        chunk = inp.read(min(n, 1 << 24))
        if not chunk:
            return
        n -= len(chunk)


def main(argv: list[str] | None = None) -> int:
    """Entry point: frames on the real stdout only; everything printed by libraries goes to stderr."""
    logging.basicConfig(
        level=os.environ.get("S2CRNET_LOG", "INFO"),
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    try:
        return serve(inp, out)
    except (BrokenPipeError, KeyboardInterrupt):
        return 0


if __name__ == "__main__":
    sys.exit(main())
