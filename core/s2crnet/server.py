"""The per-user worker that outlives one plug-in call: ``python -m s2crnet.server --dir DIR --name NAME``.

Why: a worker started per call pays Python, torch and the weights again (~2 s) for a ~40 ms job, and people
adjust and retry. The first call starts this server (``plugin/bridge.py``: ``connect_shared``); later calls from any
GIMP of the same user connect to it and get the engine already loaded.

Who may connect: the socket lives in DIR, a folder of the user's that only they can enter (0700, checked here
too); a client must prove it holds the 32-byte key in ``DIR/NAME.key`` (a 0600 file) through
``multiprocessing.connection``'s HMAC challenge, in both directions; on Linux the peer's uid (SO_PEERCRED) must
be this process's, checked before anything is read. There is no network listener.

A connection: the client sends ``{"type": "hello", "protocol"}`` and gets ``{"type": "ok", "pid", "version",
"fingerprint"}``; or ``{"type": "busy"}`` (another call is being served: the client runs a worker of its own);
or ``{"type": "stale"}`` (the project's code, weights or protocol changed since this server started: it exits
and the client starts a fresh one). Then the worker protocol of :mod:`s2crnet.worker` runs unchanged until
``quit`` or the end of the connection, its byte stream carried as connection messages.

Lifetime: exits after ``--idle`` seconds without a connection (counted from the end of the last one), as soon
as the project changed, and on SIGTERM; the socket file goes with it.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import queue
import signal
import socket
import stat
import struct
import sys
import threading
import time
from multiprocessing.connection import Connection, Listener, answer_challenge, deliver_challenge
from pathlib import Path
from typing import Any

from s2crnet import protocol
from s2crnet.protocol import PROTOCOL, BadFrame, FrameError
from s2crnet.worker import Worker, serve

log = logging.getLogger("s2crnet.server")
DEFAULT_IDLE = 600.0
CHUNK = 1 << 24  # bytes per connection message: big pixel buffers go as several
CHECK_EVERY = 30.0  # seconds between fingerprint checks while idle


class MessageStream:
    """A byte stream over a ``multiprocessing`` Connection, so the worker's framing runs on it unchanged."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._buf = memoryview(b"")

    def _fill(self) -> bool:
        if not self._buf:
            try:
                self._buf = memoryview(self.conn.recv_bytes())
            except (EOFError, OSError):
                return False
        return True

    def readinto(self, view: memoryview) -> int:
        if not self._fill():
            return 0
        n = min(len(view), len(self._buf))
        view[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def read(self, n: int) -> bytes:
        if not self._fill():
            return b""
        out = self._buf[:n].tobytes()
        self._buf = self._buf[n:]
        return out

    def write(self, data: bytes | bytearray | memoryview) -> None:
        size = len(memoryview(data).cast("B"))
        for start in range(0, size, CHUNK):
            self.conn.send_bytes(data, start, min(CHUNK, size - start))

    def flush(self) -> None:
        pass


def fingerprint() -> str:
    """Changes when the package's code, the weights folder or the protocol changes (sizes and mtimes)."""
    from s2crnet import weights

    h = hashlib.sha256(f"protocol {PROTOCOL}\n".encode())
    package = Path(__file__).resolve().parent
    files = sorted(package.rglob("*.py"))
    folder = weights.weights_dir()
    if folder.is_dir():
        files += sorted(p for p in folder.iterdir() if p.suffix in (".pt", ".json"))
    for p in files:
        try:
            st = p.stat()
        except OSError:
            continue
        h.update(f"{p} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def check_private_folder(folder: Path) -> None:
    """Refuse a folder another user could enter or own: the socket and key must stay the user's alone."""
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode):
        raise SystemExit(f"{folder} is not a folder; remove it so the worker can create its own.")
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o077):
        raise SystemExit(
            f"{folder} must belong to this user with mode 0700 (it is {oct(st.st_mode & 0o777)}, "
            f"owner uid {st.st_uid}); remove it and try again."
        )


def read_key(path: Path) -> bytes:
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode) or (hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o077)):
        raise SystemExit(f"the key {path} must be a 0600 file of this user; remove it and try again.")
    key = path.read_bytes()
    if len(key) < 16:
        raise SystemExit(f"the key {path} is too short; remove it and try again.")
    return key


def peer_uid(conn: Connection) -> int | None:
    """The connecting process's uid (Linux SO_PEERCRED), None where the platform cannot tell."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    finally:
        sock.close()
    return struct.unpack("3i", creds)[1]


class Server:
    """Accepts connections in a thread and serves them one at a time on the main thread (Qt needs it)."""

    def __init__(self, listener: Listener, key: bytes, idle: float) -> None:
        self.listener = listener
        self.key = key
        self.idle = idle
        self.fingerprint = fingerprint()
        self.worker = Worker(None)  # type: ignore[arg-type]  # the engine starts loading now
        self._conns: queue.Queue[Connection] = queue.Queue()
        self._busy = threading.Lock()
        self._closing = False

    def _refuse(self, conn: Connection, kind: str) -> None:
        try:
            protocol.write_frame(MessageStream(conn), {"type": kind})
        except OSError:
            pass
        conn.close()

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                conn = self.listener.accept()
            except OSError:
                if self._closing:
                    return
                continue
            try:
                uid = peer_uid(conn)
                if uid is not None and uid != os.getuid():
                    log.warning("refused a connection from uid %d", uid)
                    conn.close()
                    continue
                deliver_challenge(conn, self.key)
                answer_challenge(conn, self.key)
            except Exception as exc:  # wrong key, a client that went away: nothing was read or answered
                log.warning("refused a connection: %s", exc)
                conn.close()
                continue
            if not self._busy.acquire(timeout=0.5):  # a caller that just said quit is let go first
                log.info("busy: told a second caller to use a worker of its own")
                self._refuse(conn, "busy")
                continue
            self._conns.put(conn)

    def serve_connection(self, conn: Connection) -> bool:
        """One client until it quits or goes; False when the server must exit (stale)."""
        stream = MessageStream(conn)
        try:
            frame = protocol.read_frame(stream)
        except (BadFrame, FrameError) as exc:  # not one of our clients: drop it, stay up
            log.warning("dropped a connection that sent no hello: %s", exc)
            return True
        if frame is None:
            return True
        hello = frame[0]
        now = fingerprint()
        if hello.get("type") != "hello" or hello.get("protocol") != PROTOCOL or now != self.fingerprint:
            log.info("stale (protocol %s, fingerprint %s → %s): exiting", hello.get("protocol"), self.fingerprint, now)
            self._refuse(conn, "stale")
            return False
        from s2crnet import __version__

        protocol.write_frame(
            stream,
            {
                "type": "ok",
                "id": hello.get("id"),
                "pid": os.getpid(),
                "version": __version__,
                "fingerprint": self.fingerprint,
            },
        )
        try:
            serve(stream, stream, self.worker)
        except (EOFError, OSError) as exc:  # the plug-in went away (cancel, GIMP closed): ready for the next
            log.info("connection ended: %s", exc)
        return True

    def run(self) -> int:
        threading.Thread(target=self._accept_loop, name="s2crnet-accept", daemon=True).start()
        last = time.monotonic()
        checked = last
        try:
            while True:
                left = self.idle - (time.monotonic() - last)
                if left <= 0:
                    log.info("idle for %.0f s: exiting", self.idle)
                    return 0
                try:
                    conn = self._conns.get(timeout=min(left, CHECK_EVERY))
                except queue.Empty:
                    if time.monotonic() - checked >= CHECK_EVERY:
                        checked = time.monotonic()
                        if fingerprint() != self.fingerprint:
                            log.info("the project changed: exiting")
                            return 0
                    continue
                try:
                    keep = self.serve_connection(conn)
                finally:
                    last = time.monotonic()
                    self._busy.release()
                    conn.close()  # after the release: a client that waited for this end may connect again
                if not keep:
                    return 0
        finally:
            self._closing = True
            self.listener.close()


def _sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m s2crnet.server", description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="the user's private 0700 folder for the socket and key")
    ap.add_argument("--name", required=True, help="base name of NAME.sock and NAME.key in --dir")
    ap.add_argument("--idle", type=float, default=DEFAULT_IDLE, help="seconds without a call before exiting")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("S2CRNET_LOG", "INFO"),
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    folder = Path(args.dir)
    check_private_folder(folder)
    key = read_key(folder / f"{args.name}.key")
    address = str(folder / f"{args.name}.sock")
    if os.path.exists(address):  # the starting client holds the start lock and found nobody answering there
        os.unlink(address)
    listener = Listener(address, "AF_UNIX")
    os.chmod(address, 0o600)
    signal.signal(signal.SIGTERM, _sigterm)
    log.info("listening on %s (pid %d, idle exit after %.0f s)", address, os.getpid(), args.idle)
    try:
        return Server(listener, key, args.idle).run()
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
