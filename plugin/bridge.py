# -*- coding: utf-8 -*-
# Python 2.7 syntax on purpose (GIMP 2.10): no pyupgrade rules, no exception chaining.
# ruff: noqa: UP004, UP009, UP010, UP024, UP031, B904
"""The plug-in side of the S2CRNet worker protocol: standard library only, Python 2.7 and 3.x.

GIMP 2.10 runs its plug-ins in Python 2.7 and GIMP 3 in Python 3; both import this file unchanged. It finds
the config that install.py wrote, reaches a worker, sends raw pixels, relays progress and returns the worker's
reply, or raises :class:`WorkerError` with a sentence a user can act on.

Which worker (:class:`Session`): the user's shared one (``python -m s2crnet.server``, started by the first call,
exiting after ``worker_idle`` seconds without calls — config key, or $S2CRNET_WORKER_IDLE; default 600, 0 = off),
reached through a Unix socket in a 0700 folder with a 0600 key (``multiprocessing.connection``'s HMAC handshake);
else — turned off, busy with another call, another display, stale, dead, or Windows — a worker started for this
call alone (``python -m s2crnet.worker``, frames on its stdin/stdout), as before the shared one existed.

Frame (both directions; the worker's twin is ``s2crnet.protocol``, tested to be equal)::

    b"S2CR"  uint32 BE header length  uint64 BE payload length  header (UTF-8 JSON)  payload (raw bytes)

The header always holds ``"protocol": PROTOCOL`` and ``"type"``. The payload is the concatenation of the
buffers listed in ``header["buffers"]`` (``{"name", "dtype": u8|u16|f32, "shape": [...]}``, little-endian,
C order). Keep this file free of f-strings, annotations, ``nonlocal`` and other Python-3-only syntax:
tests/test_bridge_py27.py rejects them.
"""
from __future__ import absolute_import, division, print_function

import errno
import hashlib
import json
import os
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

try:  # Python 3
    import queue as _queue
except ImportError:  # Python 2.7
    import Queue as _queue  # type: ignore[no-redef]

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
IDLE_ENV = "S2CRNET_WORKER_IDLE"
DEFAULT_IDLE = 600.0  # seconds the shared worker waits for the next call; 0: a worker per call
START_TIMEOUT = 30.0  # seconds for a new shared worker to open its socket
HANDSHAKE_TIMEOUT = 10.0
CHUNK = 1 << 24  # bytes per connection message
DISPLAY_VARS = ("DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "QT_QPA_PLATFORM")


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
class _ClosesOnExit(object):
    """``with``: ``close()`` after success, ``kill()`` after an exception."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.kill()
        return False

    def close(self):
        raise NotImplementedError

    def kill(self):
        raise NotImplementedError


class Worker(_ClosesOnExit):
    """One running worker process; use as a context manager (``quit`` and wait on exit, kill on error).

    ``timeout``: seconds without any frame from the worker before it is declared hung and killed.
    """

    def __init__(self, argv=None, env=None, config=None, timeout=None, cwd=None):
        if argv is None:
            argv, env = worker_command(config if config is not None else find_config())
        self._init_channel(timeout)
        kwargs = {}  # type: dict
        if os.name == "nt":
            kwargs["creationflags"] = 0x08000000  # CREATE_NO_WINDOW: no console flashing up from GIMP
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env, cwd=cwd, **kwargs)
        except (OSError, IOError) as exc:
            raise WorkerError("not-installed", "The S2CRNet worker could not be started (%s: %s); run `%s` in "
                              "the project folder." % (argv[0], exc, INSTALL_HINT))
        self.argv = list(argv)
        threads = []
        for target, stream in ((self._read_stdout, self.proc.stdout), (self._read_stderr, self.proc.stderr)):
            t = threading.Thread(target=target, args=(stream,))
            t.daemon = True
            t.start()
            threads.append(t)
        self._stderr_thread = threads[1]

    def _init_channel(self, timeout):
        """What receiving needs, for a process or a connection: the frame queue the reader thread fills."""
        self.timeout = _timeout(timeout)
        self._frames = _queue.Queue()  # type: _queue.Queue
        self._stderr = []
        self._next_id = 0

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
        if self._stderr_thread is not None:
            self._stderr_thread.join(1.0)  # its last lines say why
        tail = self.stderr_tail()
        if rc in (126, 127) or "error while loading shared libraries" in tail or "Exec format error" in tail:
            return WorkerError("not-installed", cannot_start_message(self.argv[0], rc, tail))
        return WorkerError("crashed", "The S2CRNet worker stopped unexpectedly%s (exit status %s%s); see GIMP's "
                           "error console, and re-run `%s` if it persists."
                           % (what, rc, ("; last message: " + tail) if tail else "", INSTALL_HINT))

    def _stdin(self):
        stdin = self.proc.stdin
        assert stdin is not None  # opened with PIPE
        return stdin

    def _write(self, chunks):
        stdin = self._stdin()
        for chunk in chunks:
            stdin.write(chunk)
        stdin.flush()

    def _hung(self):
        self.kill()

    def send(self, header, buffers=()):
        self._next_id += 1
        header = dict(header)
        header["id"] = self._next_id
        try:
            self._write(encode_frame(header, buffers))
        except (IOError, OSError, ValueError, EOFError):
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
                    self._hung()
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
                stdin = self._stdin()
                for chunk in encode_frame({"type": "quit"}):
                    stdin.write(chunk)
                stdin.flush()
                stdin.close()
            except (IOError, OSError, ValueError):
                pass
            end = time.time() + wait
            while self.proc.poll() is None and time.time() < end:
                time.sleep(0.02)
        self.kill()


FLATPAK_HINT = "python3 install.py --flatpak"


def cannot_start_message(python, rc, tail):
    """The interpreter itself cannot run where the plug-in runs (exit 126/127, a missing shared library): most
    often GIMP's Flatpak sandbox, whose /usr is not the one the project's venv was made with. The sentence names
    the command that gives the sandbox a worker of its own."""
    what = "The S2CRNet worker's Python (%s) cannot start here (exit status %s%s)." % (
        python, rc, ("; " + tail) if tail else "")
    if os.path.exists("/.flatpak-info"):  # inside a Flatpak sandbox
        return ("%s This GIMP is the Flatpak build, whose sandbox cannot run the project's venv: run `%s` in the "
                "project folder to set up a worker inside the sandbox, then restart GIMP." % (what, FLATPAK_HINT))
    if os.environ.get("SNAP"):
        return ("%s This GIMP is the Snap build, which the plug-in does not support (see 'GIMP from Flathub or "
                "Snap' in the README): use GIMP from your distribution or Flathub." % what)
    return ("%s If this GIMP runs in a sandbox (the Flatpak build), run `%s` in the project folder to give it a "
            "worker of its own; otherwise re-run `%s` there to recreate the venv." % (what, FLATPAK_HINT, INSTALL_HINT))


def _reply_error(header):
    kind = header.get("kind") or "internal"
    msg = header.get("message") or "The S2CRNet worker failed without saying why."
    if kind == "protocol" and INSTALL_HINT not in msg:
        msg += " Re-run `%s` to update the plug-in and the worker together." % INSTALL_HINT
    return WorkerError(kind, msg)


# -- the user's shared worker (s2crnet.server) ------------------------------------------------------------------
class _MessageStream(object):
    """A byte stream over a multiprocessing Connection (the framing above runs on it unchanged)."""

    def __init__(self, conn):
        self.conn = conn
        self._buf = b""
        self._pos = 0

    def read(self, n):
        if self._pos >= len(self._buf):
            try:
                self._buf = self.conn.recv_bytes()
            except (EOFError, IOError, OSError):
                return b""
            self._pos = 0
        out = self._buf[self._pos:self._pos + n]
        self._pos += len(out)
        return out

    def write(self, data):
        size = len(data)
        for start in range(0, size, CHUNK):
            self.conn.send_bytes(data, start, min(CHUNK, size - start))

    def flush(self):
        pass


class SharedWorker(Worker):
    """A connection to the user's long-lived worker; ``kill`` only drops the connection (the worker serves the
    next call), except after a timeout, when the hung worker itself is killed."""

    def __init__(self, conn, log_path, timeout=None):
        self._init_channel(timeout)
        self.proc = None  # type: ignore[assignment]  # no process of its own: what would use one is overridden
        self.conn = conn
        self.log_path = log_path
        self.pid = None
        self.started = False  # set by connect_shared when this call started it
        self._stream = _MessageStream(conn)
        self._reader = threading.Thread(target=self._read_stdout, args=(self._stream,))
        self._reader.daemon = True
        self._reader.start()

    def hello(self):
        """"ok", "busy" or "stale" from the worker (None when it does not answer in time)."""
        try:
            self._write(encode_frame({"type": "hello", "id": 0}))
            kind, item = self._frames.get(timeout=HANDSHAKE_TIMEOUT)
        except (_queue.Empty, IOError, OSError, ValueError, EOFError):
            return None
        if kind != "frame":
            return None
        header = item[0]
        self.pid = header.get("pid")
        return header.get("type")

    def _write(self, chunks):
        for chunk in chunks:
            self._stream.write(chunk)

    def stderr_tail(self, n=3):
        try:
            with open(self.log_path, "rb") as fh:
                lines = fh.read().decode("utf-8", "replace").splitlines()
        except (IOError, OSError):
            return ""
        return " / ".join(line for line in lines[-n:] if line.strip())

    def _crashed(self, what):
        self.kill()
        tail = self.stderr_tail()
        return WorkerError("crashed", "The S2CRNet worker stopped unexpectedly%s%s; see %s, and re-run `%s` if it "
                           "persists." % (what, ("; last message: " + tail) if tail else "", self.log_path,
                                          INSTALL_HINT))

    def _hung(self):
        if self.pid:
            try:
                os.kill(int(self.pid), 9)
            except (OSError, ValueError):
                pass
        self.kill()

    def kill(self):
        """Drop the connection. The socket is shut down first, which ends the reader thread's blocked read, and
        its descriptor is closed only once that thread is gone: a descriptor closed under a blocked read is soon
        reused (for the next worker's stdin pipe, say), and the stale read would steal bytes from it."""
        try:
            fd = self.conn.fileno()
        except (IOError, OSError, ValueError):
            return  # already closed
        try:
            dup = socket.fromfd(fd, socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                dup.shutdown(socket.SHUT_RDWR)
            finally:
                dup.close()
        except (IOError, OSError, socket.error):
            pass
        if self._reader is not threading.current_thread():
            self._reader.join(5.0)
        if self._reader.is_alive():
            return  # never close under a read still in flight; the socket is shut down, so nothing more flows
        try:
            self.conn.close()
        except (IOError, OSError):
            pass

    def close(self, wait=5.0):
        """Say quit and wait for the worker to end the connection: it is then free for the next call."""
        try:
            self._write(encode_frame({"type": "quit"}))
            end = time.time() + wait
            while time.time() < end:
                if self._frames.get(timeout=max(0.0, end - time.time()))[0] == "eof":
                    break
        except (_queue.Empty, IOError, OSError, ValueError, EOFError):
            pass
        self.kill()


def _timeout(timeout):
    if timeout is not None:
        return timeout
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def worker_idle(cfg):
    """Seconds the shared worker waits for the next call ($S2CRNET_WORKER_IDLE, else the config's
    ``worker_idle``, else 600); 0 turns it off: a worker per call, as before."""
    raw = os.environ.get(IDLE_ENV)
    if raw is None:
        raw = cfg.get("worker_idle", DEFAULT_IDLE)
    try:
        return max(0.0, float(raw))
    except (TypeError, ValueError):
        return DEFAULT_IDLE


def _mine_alone(path, is_kind):
    """True when ``path`` is of that kind (stat.S_ISDIR / S_ISREG, not a link), this user's, and no one else's
    to read or enter."""
    st = os.lstat(path)
    return is_kind(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def private_dir():
    """The user's own 0700 folder for the socket and key: ``$XDG_RUNTIME_DIR/s2crnet``, else
    ``<tmp>/s2crnet-<uid>``. OSError when it exists but is not this user's alone (it is never loosened or used)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base) and os.stat(base).st_uid == os.getuid():
        path = os.path.join(base, "s2crnet")
    else:
        import tempfile  # here, not at the top: its import is ~5 ms of every GIMP call's start-up

        path = os.path.join(tempfile.gettempdir(), "s2crnet-%d" % os.getuid())
    try:
        os.mkdir(path, 0o700)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
    if not _mine_alone(path, stat.S_ISDIR):
        raise OSError("%s is not a private folder of this user" % path)
    return path


def install_name(cfg, argv, env):
    """``worker-<hash>``: one shared worker per install (interpreter, code folder, protocol) and per S2CRNET_*
    setting that changes its answers (weights folder, device)."""
    settings = sorted((k, v) for k, v in env.items()
                      if k.startswith("S2CRNET_") and k not in (IDLE_ENV, TIMEOUT_ENV, CONFIG_ENV, "S2CRNET_LOG"))
    blob = json.dumps([list(argv), cfg.get("pythonpath"), PROTOCOL, settings], sort_keys=True)
    return "worker-" + hashlib.sha1(blob.encode("utf-8")).hexdigest()[:12]


def _read_key(path):
    if not _mine_alone(path, stat.S_ISREG):
        raise OSError("%s is not a 0600 key file of this user" % path)
    with open(path, "rb") as fh:
        return fh.read()


def _write_key(path):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, os.urandom(32))
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _client(address, key, timeout):
    """A handshaken Connection, or None when nobody answers there within ``timeout`` (a stale or frozen socket)."""
    from multiprocessing.connection import Client

    box = []  # type: list

    def dial():
        try:
            box.append(Client(address, authkey=key))
        except Exception as exc:  # refused, gone, wrong key: nobody we can use
            box.append(exc)

    t = threading.Thread(target=dial)
    t.daemon = True
    t.start()
    t.join(timeout)
    if not box or isinstance(box[0], Exception):
        return None
    return box[0]


class _StartLock(object):
    """Only one caller at a time starts the shared worker (flock on NAME.lock)."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def __enter__(self):
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
        return False


def _note(text):
    sys.stderr.write("s2crnet: %s\n" % text)


def _shared_paths(folder, name):
    """NAME.sock, NAME.key and NAME.log in the private folder."""
    return [os.path.join(folder, name + ext) for ext in (".sock", ".key", ".log")]


def dial_shared(cfg):
    """The running shared worker of this install and its paths, without starting one ((None, paths) when none
    answers). WorkerError (not installed) or OSError (no private folder) as from connect_shared."""
    argv, env = worker_command(cfg)
    paths = _shared_paths(private_dir(), install_name(cfg, argv, env))
    return _dial(paths, None)[0], paths


def _dial(paths, timeout):
    """(SharedWorker or None, its answer to hello)."""
    sock, key_path, log_path = paths
    if not os.path.exists(sock) or not os.path.exists(key_path):
        return None, None
    try:
        key = _read_key(key_path)
    except (IOError, OSError) as exc:
        _note("not using the shared worker: %s" % exc)
        return None, "refused"
    conn = _client(sock, key, HANDSHAKE_TIMEOUT)
    if conn is None:
        return None, None
    w = SharedWorker(conn, log_path, timeout)
    answer = w.hello()
    if answer == "ok":
        return w, answer
    w.kill()
    return None, answer


def _spawn(argv, env, folder, name, idle, log_path):
    args = [argv[0], "-m", "s2crnet.server", "--dir", folder, "--name", name, "--idle", "%g" % idle]
    # its own session: it outlives this plug-in call and GIMP's signals to it
    detach = {"start_new_session": True} if sys.version_info[0] >= 3 else {"preexec_fn": os.setsid}  # type: dict
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(os.devnull, "rb") as null_in:
        with os.fdopen(fd, "wb") as log:
            return subprocess.Popen(args, stdin=null_in, stdout=log, stderr=log, env=env, cwd=folder,
                                    close_fds=True, **detach)


def connect_shared(cfg, timeout=None):
    """The user's shared worker for this install, started when none answers; None when it cannot be used (turned
    off, busy with another call, failed to start): the caller then runs a worker of its own."""
    argv, env = worker_command(cfg)
    idle = worker_idle(cfg)
    if idle <= 0 or os.name != "posix":
        return None
    try:
        folder = private_dir()
    except OSError as exc:
        _note("not using the shared worker: %s" % exc)
        return None
    name = install_name(cfg, argv, env)
    paths = _shared_paths(folder, name)
    w, answer = _dial(paths, timeout)
    if w is not None or answer in ("busy", "refused"):
        return w
    with _StartLock(os.path.join(folder, name + ".lock")):
        w, answer = _dial(paths, timeout)  # another call may have started it meanwhile
        if w is not None or answer in ("busy", "refused"):
            return w
        end = time.time() + 2.0
        while os.path.exists(paths[0]) and answer == "stale" and time.time() < end:
            time.sleep(0.01)  # the stale worker removes its socket as it exits
        _write_key(paths[1])
        proc = _spawn(argv, env, folder, name, idle, paths[2])
        end = time.time() + START_TIMEOUT
        while time.time() < end:
            if proc.poll() is not None:
                _note("the shared worker exited at start (status %s); see %s" % (proc.returncode, paths[2]))
                return None
            if os.path.exists(paths[0]):
                w, answer = _dial(paths, timeout)
                if w is not None:
                    w.started = True
                    return w
            time.sleep(0.005)
        _note("the shared worker did not open %s within %d s" % (paths[0], START_TIMEOUT))
        return None


def stop_shared(cfg, wait=10.0):
    """Stop the user's shared worker for this install if one answers (SIGTERM); its pid, or None. For tools and
    tests that need the next call to start cold, and for a clean end of a session."""
    try:
        w, paths = dial_shared(cfg)
    except (WorkerError, OSError):
        return None
    if w is None or not w.pid:
        return None
    pid = int(w.pid)
    w.kill()
    try:
        os.kill(pid, 15)
    except OSError:
        return None
    end = time.time() + wait
    while os.path.exists(paths[0]) and time.time() < end:
        time.sleep(0.02)
    return pid


class Session(_ClosesOnExit):
    """What the plug-ins use for one call: the user's shared worker when it answers, else a worker of the call's
    own (as before the shared worker existed). A shared worker that dies, or shows dialogs on another display,
    is replaced by an own worker and the request is sent again: the call still succeeds."""

    RETRY = ("crashed", "display", "protocol")

    def __init__(self, config=None, timeout=None):
        self.config = config if config is not None else find_config()
        self.timeout = timeout
        self.worker = None
        self.shared = False
        self.started = False  # True when this call had to start the worker (a cold call)
        self.connect_seconds = None
        self._starting = None
        self._start_error = None

    def start(self, background=False):
        """Connect to the worker (starting it when needed) now; ``background``: in a thread, so that reading the
        layer's pixels overlaps it. ``request`` waits for it either way."""
        if background:
            if self.worker is None and self._starting is None:
                self._starting = threading.Thread(target=self._start_in_thread)
                self._starting.daemon = True
                self._starting.start()
            return self
        self._settled()
        if self._start_error is not None:
            error, self._start_error = self._start_error, None
            raise error
        self._connect()
        return self

    def _connect(self):
        if self.worker is None:
            t0 = time.time()
            self.worker = connect_shared(self.config, self.timeout)
            self.shared = self.worker is not None
            if self.worker is None:
                self.worker = Worker(config=self.config, timeout=self.timeout)
                self.started = True
            else:
                self.started = self.worker.started
            self.connect_seconds = time.time() - t0

    def _start_in_thread(self):
        try:
            self._connect()
        except WorkerError as exc:
            self._start_error = exc

    def request(self, header, buffers=(), progress=None, cancelled=None, timeout=-1):
        worker = self.start().worker
        assert worker is not None  # start() connected or raised
        header = dict(header)
        if header.get("type") == "dialog":
            header["display"] = dict((k, os.environ[k]) for k in DISPLAY_VARS if os.environ.get(k))
        if self.shared:
            try:
                return worker.request(header, buffers, progress, cancelled, timeout)
            except WorkerError as exc:
                # a dialog the user may already have worked in is not shown again: its crash is reported
                if exc.kind not in self.RETRY or (exc.kind == "crashed" and header.get("type") == "dialog"):
                    raise
                _note("the shared worker failed (%s); using a worker of this call's own" % exc)
                worker.kill()
                worker = self.worker = Worker(config=self.config, timeout=self.timeout)
                self.shared = False
        return worker.request(header, buffers, progress, cancelled, timeout)

    def ping(self):
        return self.request({"type": "ping"})[0]

    def _settled(self):
        """The worker once a background start has finished (None if there is none yet)."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        return self.worker

    def kill(self):
        worker = self._settled()
        if worker is not None:
            worker.kill()

    def close(self):
        worker = self._settled()
        if worker is not None:
            worker.close()


# -- helpers the plug-ins share (pure Python, no numpy) ----------------------------------------------------------
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


def layer_buffers(prefix, image, mask=None, target=None, target_mask=None, masks=()):
    """The ``(desc, data)`` list for one item of a predict/batch/dialog request.

    ``image``/``target``: ``(width, height, dtype, bytes)`` RGB or RGBA; ``mask``, ``masks`` and ``target_mask``:
    ``(width, height, dtype, bytes)`` one channel. ``masks`` are multiplied with ``mask`` by the worker.
    """
    out = []

    def add(name, item, channels):
        w, h, dtype, data = item
        if channels is None:  # RGB or RGBA, as the layer holds it
            channels = len(data) // (w * h * DTYPE_SIZE[dtype])
        shape = [h, w, channels] if channels > 1 else [h, w]
        out.append(({"name": prefix + name, "dtype": dtype, "shape": shape}, data))

    add("image", image, None)
    if mask is not None:
        add("mask", mask, 1)
    for i, m in enumerate(masks):
        add("mask%d" % (i + 1), m, 1)
    if target is not None:
        add("target", target, None)
    if target_mask is not None:
        add("target_mask", target_mask, 1)
    return out
