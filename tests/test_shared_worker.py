"""The per-user shared worker (``s2crnet.server``) through the plug-ins' bridge, with real processes and sockets:
reuse, idle exit, who may connect, and every fault that must still end in a successful call."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from io import BytesIO
from multiprocessing.connection import AuthenticationError, Client
from pathlib import Path

import numpy as np
import pytest
from plugin_helpers import ROOT

from helpers import scene, server_pids
from s2crnet.engine import harmonize
from s2crnet.worker import OtherDisplay, Worker

sys.path.insert(0, str(ROOT / "plugin"))
import bridge

sys.path.pop(0)

PY27 = Path("/root/.pyenv/versions/2.7.18/bin/python")


@pytest.fixture
def runtime(monkeypatch, plumbing_weights):
    """A private runtime folder of its own (so no other test's worker answers), and every worker it started
    killed at the end."""
    base = Path(tempfile.mkdtemp(prefix="s2crnet-rt-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    monkeypatch.setenv(bridge.IDLE_ENV, "60")
    yield base
    for pid in _server_pids(base):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    shutil.rmtree(base, ignore_errors=True)


def _server_pids(base: Path) -> list[int]:
    return server_pids(base)


def config() -> dict:
    return {"python": sys.executable, "pythonpath": str(ROOT / "core"), "protocol": bridge.PROTOCOL}


def request(img, mask, session=None):
    h, w = mask.shape
    rgba = np.dstack([img, np.full((h, w), 255, np.uint8)])
    bufs = bridge.layer_buffers("", (w, h, "u8", rgba.tobytes()), (w, h, "u8", mask.tobytes()))
    s = session or bridge.Session(config())
    with s:
        header, out = s.request({"type": "predict", "render": "image"}, bufs)
    x, y, bw, bh = header["region"]
    desc, data = out["pixels"]
    expected = harmonize(rgba, mask)[0][y : y + bh, x : x + bw]
    assert np.array_equal(np.frombuffer(data, np.uint8).reshape(desc["shape"]), expected)
    return s


def folder(base: Path) -> Path:
    return base / "s2crnet"


@pytest.mark.slow
def test_second_call_reuses_the_worker_and_matches_harmonize(runtime):
    img, mask = scene(96, 128)
    first = request(img, mask)
    second = request(img, mask)
    assert first.shared and second.shared
    assert first.worker.pid == second.worker.pid and _server_pids(runtime) == [first.worker.pid]
    d = folder(runtime)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for f in d.iterdir():
        if f.suffix in (".key", ".sock", ".log"):
            assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f


@pytest.mark.slow
def test_idle_worker_exits_and_removes_its_socket(runtime, monkeypatch):
    monkeypatch.setenv(bridge.IDLE_ENV, "1")
    s = request(*scene(48, 64))
    pid = s.worker.pid
    deadline = time.time() + 20
    while time.time() < deadline and _server_pids(runtime):
        time.sleep(0.1)
    assert not _server_pids(runtime), f"worker {pid} still runs after its idle time"
    assert not list(folder(runtime).glob("*.sock"))


def test_idle_zero_means_a_worker_per_call(runtime, monkeypatch):
    monkeypatch.setenv(bridge.IDLE_ENV, "0")
    s = request(*scene(48, 64))
    assert not s.shared and not _server_pids(runtime)
    assert bridge.worker_idle({"worker_idle": 5}) == 0.0
    monkeypatch.delenv(bridge.IDLE_ENV)
    assert bridge.worker_idle({"worker_idle": 5}) == 5.0 and bridge.worker_idle({}) == bridge.DEFAULT_IDLE


def _paths(runtime: Path) -> tuple[str, bytes]:
    sock = next(folder(runtime).glob("*.sock"))
    return str(sock), sock.with_suffix(".key").read_bytes()


def test_a_client_without_the_key_is_refused_and_the_worker_goes_on(runtime):
    img, mask = scene(48, 64)
    request(img, mask)
    sock, key = _paths(runtime)
    with pytest.raises((AuthenticationError, EOFError, OSError)):
        Client(sock, authkey=b"not the key" * 3).recv_bytes()
    s = request(img, mask)
    assert s.shared


@pytest.mark.slow
def test_garbage_instead_of_hello_is_dropped_and_the_worker_goes_on(runtime):
    img, mask = scene(48, 64)
    first = request(img, mask)
    sock, key = _paths(runtime)
    conn = Client(sock, authkey=key)
    conn.send_bytes(b"GET / HTTP/1.0\r\n\r\n")
    with pytest.raises((EOFError, OSError)):
        conn.recv_bytes()
    again = request(img, mask)
    assert again.shared and again.worker.pid == first.worker.pid


def _as_nobody(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/usr/bin/python3", "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        user=65534,
        group=65534,
        env=env or {"PATH": "/usr/bin:/bin"},
        cwd="/",
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/usr/bin/python3"),
    reason="needs root (to run a process as another user) and /usr/bin/python3",
)
def test_another_users_process_is_refused(runtime):
    img, mask = scene(48, 64)
    request(img, mask)
    sock, key = _paths(runtime)
    probe = "\n".join(
        [
            "from multiprocessing.connection import Client",
            "try:",
            f"    c = Client({sock!r}, authkey={key!r})",
            "    c.send_bytes(b'x')",
            "    print('CONNECTED', c.recv_bytes())",
            "except Exception as e:",
            "    print('REFUSED', type(e).__name__)",
        ]
    )
    # 1. the 0700 folder: the other user cannot even reach the socket (it also does not know the key)
    os.chmod(runtime, 0o711)
    r = _as_nobody(probe)
    assert "REFUSED PermissionError" in r.stdout, r.stdout + r.stderr
    # 2. even with the folder and socket opened up and the key leaked, the worker checks the peer's uid
    d = folder(runtime)
    os.chmod(d, 0o711)
    os.chmod(sock, 0o666)
    try:
        r = _as_nobody(probe)
    finally:
        os.chmod(d, 0o700)
        os.chmod(sock, 0o600)
    assert "REFUSED" in r.stdout and "CONNECTED" not in r.stdout, r.stdout + r.stderr
    log = next(d.glob("*.log")).read_text()
    assert "refused a connection from uid 65534" in log
    s = request(img, mask)  # and this user's calls still go through
    assert s.shared


def test_a_folder_others_can_enter_is_never_used(runtime):
    d = folder(runtime)
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    s = request(*scene(48, 64))
    assert not s.shared and not _server_pids(runtime)
    assert stat.S_IMODE(d.stat().st_mode) == 0o755  # not silently loosened or tightened


@pytest.mark.slow
def test_a_stale_socket_is_replaced(runtime):
    img, mask = scene(48, 64)
    first = request(img, mask)
    sock, _ = _paths(runtime)
    os.kill(first.worker.pid, signal.SIGKILL)  # dies without removing its socket
    while _server_pids(runtime):
        time.sleep(0.05)
    assert os.path.exists(sock)
    second = request(img, mask)
    assert second.shared and second.worker.pid != first.worker.pid


@pytest.mark.slow
def test_a_worker_that_dies_before_the_request_is_replaced_by_an_own_one(runtime):
    img, mask = scene(48, 64)
    request(img, mask)
    s = bridge.Session(config()).start()
    assert s.shared
    os.kill(s.worker.pid, signal.SIGKILL)
    while _server_pids(runtime):
        time.sleep(0.05)
    request(img, mask, session=s)  # same Session: the request itself went to a worker of its own
    assert not s.shared


@pytest.mark.slow
def test_two_calls_at_once_both_succeed(runtime):
    img, mask = scene(48, 64)
    request(img, mask)
    holder = bridge.Session(config()).start()  # a call in progress on the shared worker
    try:
        other = request(img, mask)
        assert not other.shared  # it did not wait for the first: it ran a worker of its own
    finally:
        holder.close()
    assert request(img, mask).shared


@pytest.mark.slow
def test_a_changed_project_makes_the_worker_stale(runtime, plumbing_weights):
    img, mask = scene(48, 64)
    old = request(img, mask).worker.pid
    manifest = plumbing_weights / "weights.json"
    st = manifest.stat()
    os.utime(manifest, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    new = request(img, mask)
    assert new.shared and new.worker.pid != old
    deadline = time.time() + 10
    while time.time() < deadline and old in _server_pids(runtime):
        time.sleep(0.05)
    assert _server_pids(runtime) == [new.worker.pid]


def test_a_client_of_another_protocol_is_told_stale_and_the_worker_exits(runtime):
    request(*scene(48, 64))
    sock, key = _paths(runtime)
    pid = _server_pids(runtime)[0]
    conn = Client(sock, authkey=key)
    stream = bridge._MessageStream(conn)
    for chunk in bridge.encode_frame({"type": "hello", "protocol": 99}):
        stream.write(chunk)
    header, _ = bridge.read_frame(stream)
    assert header["type"] == "stale"
    deadline = time.time() + 10
    while time.time() < deadline and pid in _server_pids(runtime):
        time.sleep(0.05)
    assert pid not in _server_pids(runtime) and not os.path.exists(sock)


@pytest.mark.skipif(not PY27.exists(), reason="no Python 2.7 on this machine (GIMP 2.10's plug-in Python)")
def test_python27_bridge_uses_the_shared_worker(runtime, tmp_path):
    img, mask = scene(48, 64)
    first = request(img, mask)  # started from Python 3 (GIMP 3)
    rgba = np.dstack([img, np.full(mask.shape, 255, np.uint8)])
    (tmp_path / "img.raw").write_bytes(rgba.tobytes())
    (tmp_path / "mask.raw").write_bytes(mask.tobytes())
    code = f"""
import sys, json
sys.path.insert(0, {str(ROOT / "plugin")!r})
import bridge
cfg = json.loads({repr(__import__("json").dumps(config()))})
img = open({str(tmp_path / "img.raw")!r}, 'rb').read()
mask = open({str(tmp_path / "mask.raw")!r}, 'rb').read()
s = bridge.Session(cfg)
with s:
    h, out = s.request({{"type": "predict", "render": "image"}}, bridge.layer_buffers("", (64, 48, "u8", img),
                       (64, 48, "u8", mask)))
open({str(tmp_path / "out.raw")!r}, 'wb').write(out["pixels"][1])
print(json.dumps({{"shared": s.shared, "pid": s.worker.pid, "region": h["region"], "v": sys.version_info[0]}}))
"""
    r = subprocess.run(
        [str(PY27), "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
    )
    assert r.returncode == 0, r.stderr
    got = __import__("json").loads(r.stdout.strip().splitlines()[-1])
    assert got["v"] == 2 and got["shared"] and got["pid"] == first.worker.pid
    x, y, bw, bh = got["region"]
    expected = harmonize(rgba, mask)[0][y : y + bh, x : x + bw]
    assert np.array_equal(
        np.frombuffer((tmp_path / "out.raw").read_bytes(), np.uint8).reshape(expected.shape), expected
    )


def test_the_first_dialog_fixes_the_display_and_another_is_refused(monkeypatch):
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "QT_QPA_PLATFORM"):
        monkeypatch.setenv(k, "")  # restored afterwards, whatever the worker sets
    w = Worker(BytesIO(), engine=object())
    w._use_display({"DISPLAY": ":7", "XAUTHORITY": "/tmp/xa"})
    assert os.environ["DISPLAY"] == ":7" and os.environ["XAUTHORITY"] == "/tmp/xa"
    w._use_display({"DISPLAY": ":7", "XAUTHORITY": "/tmp/xa"})
    with pytest.raises(OtherDisplay, match=":8"):
        w._use_display({"DISPLAY": ":8"})


def test_peer_uid_is_this_process(tmp_path):
    from multiprocessing.connection import Listener

    from s2crnet.server import peer_uid

    if not hasattr(socket, "SO_PEERCRED"):
        pytest.skip("no SO_PEERCRED on this platform")
    address = str(tmp_path / "s")
    with Listener(address, "AF_UNIX") as listener:
        client = Client(address)
        conn = listener.accept()
        assert peer_uid(conn) == os.getuid()
        client.close()
        conn.close()


def test_dropping_a_connection_ends_its_reader_before_the_descriptor_is_freed(tmp_path):
    # The CI failure this guards: a "busy" connection was closed while its reader thread sat in recv; the number
    # went to the next worker's stdin pipe and the stale read took that frame's first four bytes.
    from multiprocessing import Pipe

    ours, peer = Pipe()  # the peer stays open and silent, like a worker busy with another call
    w = bridge.SharedWorker(ours, str(tmp_path / "w.log"))
    time.sleep(0.1)  # the reader is now blocked in recv
    fd = ours.fileno()
    w.kill()
    assert not w._reader.is_alive()
    assert w._frames.get(timeout=1)[0] == "eof"
    r, wr = os.pipe()  # the freed number is reused, and nothing of ours reads it any more
    try:
        assert fd in (r, wr)
        os.write(wr, b"S2CR")
        assert os.read(r, 4) == b"S2CR"
    finally:
        os.close(r)
        os.close(wr)
        peer.close()
