# -*- coding: utf-8 -*-
# Python 2.7 syntax on purpose (GIMP 2.10): no pyupgrade rules, no exception chaining.
# ruff: noqa: UP004, UP009, UP010, UP024, UP031, B904
"""The plug-in side of the S2CRNet worker protocol: standard library only, Python 2.7 and 3.x.

GIMP 2.10 runs its plug-ins in Python 2.7 and GIMP 3 in Python 3; both import this file unchanged. It finds
the config that install.py wrote, starts the worker (``python -m s2crnet.worker`` in the project's venv), sends
raw pixels, relays progress and returns the worker's reply, or raises :class:`WorkerError` with a sentence a
user can act on.

Frame (both directions; the worker's twin is ``s2crnet.protocol``, tested to be equal)::

    b"S2CR"  uint32 BE header length  uint64 BE payload length  header (UTF-8 JSON)  payload (raw bytes)

The header always holds ``"protocol": PROTOCOL`` and ``"type"``. The payload is the concatenation of the
buffers listed in ``header["buffers"]`` (``{"name", "dtype": u8|u16|f32, "shape": [...]}``, little-endian,
C order). Keep this file free of f-strings, annotations, ``nonlocal`` and other Python-3-only syntax:
tests/test_bridge_py27.py rejects them.
"""
from __future__ import absolute_import, division, print_function

import json
import os
import struct
import subprocess
import sys
import threading
import time

try:  # Python 3
    import queue as _queue
except ImportError:  # Python 2.7
    import Queue as _queue

PROTOCOL = 1
MAGIC = b"S2CR"
PREFIX = struct.Struct(">4sIQ")
MAX_HEADER = 1 << 20
MAX_PAYLOAD = 1 << 34
DTYPE_SIZE = {"u8": 1, "u16": 2, "f32": 4}
CONFIG_NAME = "s2crnet-config.json"
CONFIG_ENV = "S2CRNET_CONFIG"
TIMEOUT_ENV = "S2CRNET_TIMEOUT"
DEFAULT_TIMEOUT = 180.0  # seconds without any frame from the worker (model load included)
INSTALL_HINT = "python3 install.py"


class WorkerError(Exception):
    """A failure to show the user: ``kind`` (not-installed, crashed, timeout, protocol, cancelled, bad-input,
    model, internal) and one sentence (``str(e)``) naming the fix."""

    def __init__(self, kind, message):
        Exception.__init__(self, message)
        self.kind = kind
        self.message = message

    def __str__(self):
        return self.message


# -- framing ----------------------------------------------------------------------------------------------------
def _json_bytes(header):
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def buffer_nbytes(desc):
    """Bytes of one buffer described by ``{"dtype", "shape"}``."""
    n = DTYPE_SIZE[desc["dtype"]]
    for d in desc["shape"]:
        n *= int(d)
    return n


def encode_frame(header, buffers=()):
    """Prefix + header + payload as a list of byte strings (so big pixel buffers are not copied).

    ``buffers``: sequence of ``(desc, data)``; the descs are stored in ``header["buffers"]`` in that order.
    """
    header = dict(header)
    header.setdefault("protocol", PROTOCOL)
    descs = []
    chunks = []
    total = 0
    for desc, data in buffers:
        desc = dict(desc)
        desc["shape"] = [int(d) for d in desc["shape"]]
        size = len(data)
        if size != buffer_nbytes(desc):
            raise ValueError("buffer %r holds %d bytes but its shape %r and dtype %s need %d"
                             % (desc.get("name"), size, desc["shape"], desc["dtype"], buffer_nbytes(desc)))
        descs.append(desc)
        chunks.append(data)
        total += size
    if descs or "buffers" in header:
        header["buffers"] = descs
    hb = _json_bytes(header)
    return [PREFIX.pack(MAGIC, len(hb), total), hb] + chunks


def _read_exact(stream, n):
    parts = []
    left = n
    while left > 0:
        chunk = stream.read(min(left, 1 << 24))
        if not chunk:
            return None
        parts.append(chunk)
        left -= len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class FrameError(Exception):
    """The byte stream is not a valid frame (garbage, truncated, oversized)."""


def read_frame(stream):
    """``(header, {name: (desc, bytes)})`` or None at a clean end of stream; FrameError on anything else."""
    prefix = _read_exact(stream, PREFIX.size)
    if prefix is None:
        return None
    magic, hlen, plen = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise FrameError("not an S2CRNet frame (bad magic %r)" % (magic,))
    if hlen > MAX_HEADER:
        raise FrameError("header of %d bytes exceeds the limit of %d" % (hlen, MAX_HEADER))
    if plen > MAX_PAYLOAD:
        raise FrameError("payload of %d bytes exceeds the limit of %d" % (plen, MAX_PAYLOAD))
    hb = _read_exact(stream, hlen)
    if hb is None:
        raise FrameError("stream ended inside a header")
    try:
        header = json.loads(hb.decode("utf-8"))
    except ValueError:
        raise FrameError("header is not JSON")
    if not isinstance(header, dict):
        raise FrameError("header is not a JSON object")
    payload = _read_exact(stream, plen) if plen else b""
    if payload is None:
        raise FrameError("stream ended inside a payload")
    return header, split_buffers(header, payload)


def split_buffers(header, payload):
    out = {}
    pos = 0
    for desc in header.get("buffers") or []:
        try:
            size = buffer_nbytes(desc)
        except (KeyError, TypeError, ValueError):
            raise FrameError("buffer description %r is invalid" % (desc,))
        out[desc.get("name")] = (desc, payload[pos:pos + size])
        pos += size
    if pos != len(payload):
        raise FrameError("payload holds %d bytes but the buffers describe %d" % (len(payload), pos))
    return out


# -- configuration -------------------------------------------------------------------------------------------
def find_config(search_dirs=()):
    """The config dict written by install.py: $S2CRNET_CONFIG, else the first ``s2crnet-config.json`` in
    ``search_dirs`` or next to this file. Raises WorkerError(not-installed) naming the install command."""
    candidates = []
    env = os.environ.get(CONFIG_ENV)
    if env:
        candidates.append(env)
    else:
        here = os.path.dirname(os.path.abspath(__file__))
        for d in list(search_dirs) + [here]:
            candidates.append(os.path.join(d, CONFIG_NAME))
    for path in candidates:
        if os.path.isfile(path):
            try:
                with open(path, "rb") as fh:
                    cfg = json.loads(fh.read().decode("utf-8"))
            except (IOError, OSError, ValueError) as exc:
                raise WorkerError("not-installed", "The S2CRNet configuration %s cannot be read (%s); re-run "
                                  "`%s` in the project folder." % (path, exc, INSTALL_HINT))
            cfg["_path"] = path
            return cfg
    raise WorkerError("not-installed", "The S2CRNet worker is not installed (no %s found); run `%s` in the "
                      "S2CRNet project folder, then restart GIMP." % (candidates[0] if env else CONFIG_NAME,
                                                                      INSTALL_HINT))


def worker_command(cfg):
    """argv and environment to start the worker from a config; checks that the interpreter exists."""
    py = cfg.get("python")
    if not py or not os.path.isfile(py):
        raise WorkerError("not-installed", "The S2CRNet worker's Python (%s) is missing; run `%s` in the project "
                          "folder to recreate it." % (py, INSTALL_HINT))
    if cfg.get("protocol") not in (None, PROTOCOL):
        raise WorkerError("protocol", "The installed S2CRNet worker speaks protocol %s but this plug-in speaks %d; "
                          "re-run `%s` to update both." % (cfg.get("protocol"), PROTOCOL, INSTALL_HINT))
    env = dict(os.environ)
    for k in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONNOUSERSITE"):
        env.pop(k, None)  # GIMP's own Python settings must not leak into the venv interpreter
    core = cfg.get("pythonpath")
    if core:
        env["PYTHONPATH"] = core
    env["PYTHONUNBUFFERED"] = "1"
    return [py, "-m", "s2crnet.worker"], env


# -- the client -----------------------------------------------------------------------------------------------
class Worker(object):
    """One running worker process; use as a context manager (``quit`` and wait on exit, kill on error).

    ``timeout``: seconds without any frame from the worker before it is declared hung and killed.
    """

    def __init__(self, argv=None, env=None, config=None, timeout=None, cwd=None):
        if argv is None:
            argv, env = worker_command(config if config is not None else find_config())
        if timeout is None:
            try:
                timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
            except ValueError:
                timeout = DEFAULT_TIMEOUT
        self.timeout = timeout
        self._frames = _queue.Queue()
        self._stderr = []
        self._next_id = 0
        kwargs = {}
        if os.name == "nt":
            kwargs["creationflags"] = 0x08000000  # CREATE_NO_WINDOW: no console flashing up from GIMP
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env, cwd=cwd, **kwargs)
        except (OSError, IOError) as exc:
            raise WorkerError("not-installed", "The S2CRNet worker could not be started (%s: %s); run `%s` in "
                              "the project folder." % (argv[0], exc, INSTALL_HINT))
        for target, stream in ((self._read_stdout, self.proc.stdout), (self._read_stderr, self.proc.stderr)):
            t = threading.Thread(target=target, args=(stream,))
            t.daemon = True
            t.start()

    # reader threads: the main thread only ever waits on the queue, with a timeout
    def _read_stdout(self, stream):
        try:
            while True:
                frame = read_frame(stream)
                if frame is None:
                    break
                self._frames.put(("frame", frame))
        except FrameError as exc:
            self._frames.put(("garbage", str(exc)))
        except Exception as exc:  # a closed pipe during kill
            self._frames.put(("garbage", repr(exc)))
        self._frames.put(("eof", None))

    def _read_stderr(self, stream):
        for line in iter(stream.readline, b""):
            text = line.decode("utf-8", "replace").rstrip()
            self._stderr.append(text)
            del self._stderr[:-40]
            sys.stderr.write("s2crnet-worker: %s\n" % text)

    def stderr_tail(self, n=3):
        return " / ".join(line for line in self._stderr[-n:] if line.strip())

    def _crashed(self, what):
        self.kill()
        rc = self.proc.poll()
        tail = self.stderr_tail()
        return WorkerError("crashed", "The S2CRNet worker stopped unexpectedly%s (exit status %s%s); see GIMP's "
                           "error console, and re-run `%s` if it persists."
                           % (what, rc, ("; last message: " + tail) if tail else "", INSTALL_HINT))

    def send(self, header, buffers=()):
        self._next_id += 1
        header = dict(header)
        header["id"] = self._next_id
        try:
            for chunk in encode_frame(header, buffers):
                self.proc.stdin.write(chunk)
            self.proc.stdin.flush()
        except (IOError, OSError, ValueError):
            # the worker died or refused the frame: an error frame may already be waiting
            try:
                kind, item = self._frames.get(timeout=2.0)
            except _queue.Empty:
                raise self._crashed(" while receiving the image")
            if kind == "frame" and item[0].get("type") == "error":
                self.kill()
                raise _reply_error(item[0])
            raise self._crashed(" while receiving the image")
        return self._next_id

    def receive(self, progress=None, cancelled=None, timeout=-1):
        """The next ``ok`` reply as ``(header, buffers)``; ``progress(fraction, text)`` gets progress frames;
        ``cancelled()`` returning True kills the worker. ``timeout`` None waits forever (a dialog)."""
        if timeout == -1:
            timeout = self.timeout
        deadline = None if timeout is None else time.time() + timeout
        while True:
            if cancelled is not None and cancelled():
                self.kill()
                raise WorkerError("cancelled", "Harmonize was cancelled; the image is unchanged.")
            wait = 0.25 if deadline is None else max(0.0, min(0.25, deadline - time.time()))
            try:
                kind, item = self._frames.get(timeout=wait)
            except _queue.Empty:
                if deadline is not None and time.time() >= deadline:
                    self.kill()
                    raise WorkerError("timeout", "The S2CRNet worker did not answer within %d seconds and was "
                                      "stopped; try again, or set %s to a larger number of seconds on a slow "
                                      "machine." % (timeout, TIMEOUT_ENV))
                continue
            if kind == "eof":
                raise self._crashed("")
            if kind == "garbage":
                self.kill()
                raise WorkerError("protocol", "The S2CRNet worker sent something unreadable (%s); re-run `%s` so "
                                  "plug-in and worker match." % (item, INSTALL_HINT))
            header, buffers = item
            if header.get("protocol") != PROTOCOL:
                self.kill()
                raise WorkerError("protocol", "The S2CRNet worker speaks protocol %s but this plug-in speaks %d; "
                                  "re-run `%s` to update both." % (header.get("protocol"), PROTOCOL, INSTALL_HINT))
            if deadline is not None:
                deadline = time.time() + timeout  # any frame proves the worker is alive
            t = header.get("type")
            if t == "progress":
                if progress is not None:
                    progress(float(header.get("fraction", 0.0)), header.get("text", ""))
                continue
            if t == "error":
                raise _reply_error(header)
            if t == "ok":
                return header, buffers
            self.kill()
            raise WorkerError("protocol", "The S2CRNet worker sent an unknown reply %r; re-run `%s`."
                              % (t, INSTALL_HINT))

    def request(self, header, buffers=(), progress=None, cancelled=None, timeout=-1):
        self.send(header, buffers)
        return self.receive(progress, cancelled, timeout)

    def ping(self):
        return self.request({"type": "ping"})[0]

    def kill(self):
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass
            self.proc.wait()

    def close(self, wait=5.0):
        if self.proc.poll() is None:
            try:
                for chunk in encode_frame({"type": "quit"}):
                    self.proc.stdin.write(chunk)
                self.proc.stdin.flush()
                self.proc.stdin.close()
            except (IOError, OSError, ValueError):
                pass
            end = time.time() + wait
            while self.proc.poll() is None and time.time() < end:
                time.sleep(0.02)
        self.kill()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.kill()
        return False


def _reply_error(header):
    kind = header.get("kind") or "internal"
    msg = header.get("message") or "The S2CRNet worker failed without saying why."
    if kind == "protocol" and INSTALL_HINT not in msg:
        msg += " Re-run `%s` to update the plug-in and the worker together." % INSTALL_HINT
    return WorkerError(kind, msg)


# -- helpers the plug-ins share (pure Python, no numpy) ----------------------------------------------------------
def depth_of(format_name):
    """``u8``/``u16``/``f32`` for a babl format name such as "R'G'B'A u16"."""
    if format_name.endswith("u8"):
        return "u8"
    if format_name.endswith("u16"):
        return "u16"
    return "f32"


def prefixed_buffers(buffers, prefix):
    """The same (descriptor, bytes) buffers renamed PREFIX+name: a batch request carries layer i as "i.image"..."""
    out = []
    for desc, data in buffers:
        desc = dict(desc)
        desc["name"] = prefix + desc["name"]
        out.append((desc, data))
    return out


def is_empty_mask(data, dtype):
    """True when every weight is zero (a mask with nothing marked)."""
    return data.count(b"\x00") == len(data)


def is_full_mask(data, dtype):
    """True when every weight is the maximum (nothing left as background)."""
    if dtype in ("u8", "u16"):
        return data.count(b"\xff") == len(data)
    return False


def layer_buffers(prefix, image, mask=None, target=None, target_mask=None, masks=()):
    """The ``(desc, data)`` list for one item of a predict/batch/dialog request.

    ``image``/``target``: ``(width, height, dtype, bytes)`` RGBA; ``mask``, ``masks`` and ``target_mask``:
    ``(width, height, dtype, bytes)`` one channel. ``masks`` are multiplied with ``mask`` by the worker.
    """
    out = []

    def add(name, item, channels):
        w, h, dtype, data = item
        shape = [h, w, channels] if channels > 1 else [h, w]
        out.append(({"name": prefix + name, "dtype": dtype, "shape": shape}, data))

    add("image", image, 4)
    if mask is not None:
        add("mask", mask, 1)
    for i, m in enumerate(masks):
        add("mask%d" % (i + 1), m, 1)
    if target is not None:
        add("target", target, 4)
    if target_mask is not None:
        add("target_mask", target_mask, 1)
    return out
