"""The worker through a real subprocess and the plug-ins' bridge: every failure ends in a clear error, no hang."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
from plugin_helpers import ROOT

from helpers import scene
from s2crnet import protocol
from s2crnet.engine import harmonize

sys.path.insert(0, str(ROOT / "plugin"))
import bridge

sys.path.pop(0)


def start(**kw) -> bridge.Worker:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "core"))
    return bridge.Worker(argv=[sys.executable, "-m", "s2crnet.worker"], env=env, **kw)


def raw_worker() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "s2crnet.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT / "core")),
    )


def rgba(img):
    return np.dstack([img, np.full(img.shape[:2], 255, img.dtype)])


def test_ping_predict_round_trip_is_exactly_harmonize(plumbing_weights):
    img, mask = scene(80, 120)
    with start() as w:
        info = w.ping()
        assert info["protocol"] == bridge.PROTOCOL and "crm" in info["variants"]
        bufs = bridge.layer_buffers("", (120, 80, "u8", rgba(img).tobytes()), (120, 80, "u8", mask.tobytes()))
        header, out = w.request({"type": "predict", "render": "image", "tables": ["u8", "u16", "knots"]}, bufs)
    expected, curves = harmonize(rgba(img), mask)
    x, y, bw, bh = header["region"]
    desc, data = out["pixels"]
    got = np.frombuffer(data, np.uint8).reshape(desc["shape"])
    assert np.array_equal(got, expected[y : y + bh, x : x + bw])
    assert np.array_equal(np.frombuffer(out["lut_u8"][1], np.uint8).reshape(3, 256), curves.lut_u8())
    assert np.array_equal(np.frombuffer(out["lut_u16"][1], "<u2").reshape(3, 65536), curves.lut_u16())
    knots = np.asarray(header["knots"])
    xs = np.linspace(0, 1, 65)
    probe = np.random.default_rng(0).random(1000).astype(np.float32)
    assert np.allclose(np.interp(probe, xs, knots[0]), curves.evaluate(probe, 0), atol=1e-12)


def test_batch_streams_progress_and_reports_a_failing_layer(plumbing_weights):
    img, mask = scene(40, 60)
    bufs = bridge.layer_buffers("0.", (60, 40, "u8", rgba(img).tobytes()), (60, 40, "u8", mask.tobytes()))
    bufs += bridge.layer_buffers("1.", (60, 40, "u8", rgba(img).tobytes()), (60, 40, "u8", bytes(60 * 40)))
    seen = []
    with start() as w:
        header, out = w.request(
            {"type": "batch", "render": "image", "items": [{"name": "a"}, {"name": "b"}]},
            bufs,
            progress=lambda f, t: seen.append((f, t)),
        )
    assert [r["ok"] for r in header["results"]] == [True, False]
    assert "empty" in header["results"][1]["message"] and header["results"][1]["kind"] == "bad-input"
    assert "0.pixels" in out and "1.pixels" not in out
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and any("b (2/2)" in t for _, t in seen)


def test_bad_dtype_is_a_clear_error_and_the_worker_goes_on():
    with start() as w:
        # hand-made frame: the bridge itself refuses unknown dtypes
        hb = bridge._json_bytes(
            {
                "protocol": 1,
                "type": "predict",
                "id": 5,
                "buffers": [{"name": "image", "dtype": "f64", "shape": [2, 2, 3]}],
            }
        )
        w.proc.stdin.write(struct.pack(">4sIQ", b"S2CR", len(hb), 96) + hb + b"\0" * 96)
        w.proc.stdin.flush()
        with pytest.raises(bridge.WorkerError) as err:
            w.receive()
        assert err.value.kind == "bad-input" and "u8, u16 and f32" in str(err.value)
        assert w.ping()["type"] == "ok"


def test_protocol_mismatch_asks_to_rerun_install():
    with start() as w:
        with pytest.raises(bridge.WorkerError) as err:
            w.request({"type": "ping", "protocol": 99})
    assert err.value.kind == "protocol" and "install.py" in str(err.value)


def _error_then_exit(payload: bytes, expect: str) -> None:
    p = raw_worker()
    out, _ = p.communicate(payload, timeout=60)
    reply = protocol.read_frame(__import__("io").BytesIO(out))
    assert reply is not None
    header, _ = reply
    assert header["type"] == "error" and expect in header["message"], header
    assert p.returncode == 2


def test_garbage_on_stdin_is_refused_and_the_worker_exits():
    _error_then_exit(b"GET / HTTP/1.1\r\n\r\n" + b"x" * 100, "cannot read")


def test_oversized_header_is_refused():
    _error_then_exit(struct.pack(">4sIQ", b"S2CR", (1 << 20) + 1, 0), "cannot read")


def test_huge_payload_is_refused_without_reading_it():
    _error_then_exit(struct.pack(">4sIQ", b"S2CR", 2, 1 << 40) + b"{}", "too large")


def test_huge_image_shape_is_refused_and_payload_skipped():
    with start() as w:
        desc = {"name": "image", "dtype": "u8", "shape": [20000, 20000, 4]}
        hb = bridge._json_bytes({"protocol": 1, "type": "predict", "id": 7, "buffers": [desc]})
        w.proc.stdin.write(struct.pack(">4sIQ", b"S2CR", len(hb), 16) + hb + b"\0" * 16)
        w.proc.stdin.flush()
        with pytest.raises(bridge.WorkerError) as err:
            w.receive()
        assert "more than the worker handles" in str(err.value)


def test_worker_killed_mid_request_is_reported_as_crash(plumbing_weights):
    img, mask = scene(40, 60)
    w = start()
    bufs = bridge.layer_buffers("", (60, 40, "u8", rgba(img).tobytes()), (60, 40, "u8", mask.tobytes()))
    w.send({"type": "predict", "render": "image"}, bufs)
    w.proc.kill()
    t0 = time.time()
    with pytest.raises(bridge.WorkerError) as err:
        w.receive()
    assert err.value.kind == "crashed" and time.time() - t0 < 10


def test_hung_worker_times_out_and_is_killed(tmp_path):
    hang = tmp_path / "hang.py"
    hang.write_text("import time\ntime.sleep(60)\n")
    w = bridge.Worker(argv=[sys.executable, str(hang)], env=dict(os.environ), timeout=1.0)
    t0 = time.time()
    with pytest.raises(bridge.WorkerError) as err:
        w.request({"type": "ping"})
    assert err.value.kind == "timeout" and "S2CRNET_TIMEOUT" in str(err.value)
    assert time.time() - t0 < 5 and w.proc.poll() is not None


def test_cancel_kills_the_worker(tmp_path):
    hang = tmp_path / "hang.py"
    hang.write_text("import time\ntime.sleep(60)\n")
    w = bridge.Worker(argv=[sys.executable, str(hang)], env=dict(os.environ), timeout=30)
    with pytest.raises(bridge.WorkerError) as err:
        w.request({"type": "ping"}, cancelled=lambda: True)
    assert err.value.kind == "cancelled" and w.proc.poll() is not None


def test_missing_weights_is_a_model_error(tmp_path, monkeypatch):
    monkeypatch.setenv("S2CRNET_WEIGHTS", str(tmp_path))
    img, mask = scene(40, 60)
    with start() as w:
        bufs = bridge.layer_buffers("", (60, 40, "u8", rgba(img).tobytes()), (60, 40, "u8", mask.tobytes()))
        with pytest.raises(bridge.WorkerError) as err:
            w.request({"type": "predict", "render": "image"}, bufs)
    assert err.value.kind == "model" and "weights" in str(err.value)


def test_dialog_request_reaches_run_dialog(plumbing_weights, monkeypatch, tmp_path):
    """The dialog entry point gets layers as arrays; a stub replaces Qt so the test is headless and fast."""
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "sitecustomize.py").write_text(
        "import s2crnet.dialog as d\n"
        "def run_dialog(req, engine):\n"
        "    c = engine.predict_curves(req['layers'][0]['image'], req['layers'][0]['mask'], strength=0.5)\n"
        "    return {'cancel': False, 'variant': c.variant, 'strength': 0.5, 'label': None,\n"
        "            'layers': [{'name': l['name'], 'checked': True, 'curves': c.to_dict()} for l in req['layers']]}\n"
        "d.run_dialog = run_dialog\n"
    )
    env = dict(os.environ, PYTHONPATH=f"{stub}{os.pathsep}{ROOT / 'core'}")
    img, mask = scene(40, 60)
    with bridge.Worker(argv=[sys.executable, "-m", "s2crnet.worker"], env=env) as w:
        bufs = bridge.layer_buffers("0.", (60, 40, "u8", rgba(img).tobytes()), (60, 40, "u8", mask.tobytes()))
        header, out = w.request({"type": "dialog", "render": "image", "items": [{"name": "L"}]}, bufs, timeout=None)
    assert header["cancel"] is False and header["results"][0]["checked"]
    expected, _ = harmonize(rgba(img), mask, strength=0.5)
    x, y, bw, bh = header["results"][0]["region"]
    got = np.frombuffer(out["0.pixels"][1], np.uint8).reshape(out["0.pixels"][0]["shape"])
    assert np.array_equal(got, expected[y : y + bh, x : x + bw])


def test_dialog_request_with_a_bad_option_is_refused_with_a_sentence(plumbing_weights):
    img, mask = scene(40, 60)
    with start() as w:
        bufs = bridge.layer_buffers("0.", (60, 40, "u8", rgba(img).tobytes()), (60, 40, "u8", mask.tobytes()))
        with pytest.raises(bridge.WorkerError) as err:
            w.request({"type": "dialog", "strength": "half", "items": [{"name": "L"}]}, bufs, timeout=None)
    assert err.value.kind == "bad-input" and "strength must be a number" in str(err.value)


def test_bridge_and_core_frames_are_byte_identical():
    arr = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    header = {"type": "predict", "id": 3, "variant": None}
    core = b"".join(protocol.encode_frame(header, [("image", arr)]))
    plug = b"".join(
        bridge.encode_frame(
            header, [({"name": "image", "dtype": "u16", "shape": [2, 3, 4]}, arr.astype("<u2").tobytes())]
        )
    )
    assert core == plug
    import io

    h, bufs = bridge.read_frame(io.BytesIO(core))
    h2, arrays = protocol.read_frame(io.BytesIO(plug))
    assert h == h2 and np.array_equal(arrays["image"], arr) and bufs["image"][1] == arr.tobytes()


def test_an_interpreter_that_cannot_start_here_is_named_with_the_fix(tmp_path):
    """As in GIMP's Flatpak sandbox: the venv's Python exists but cannot load its library (exit 127)."""
    fake = tmp_path / "python"
    fake.write_text(
        "#!/bin/sh\necho 'python: error while loading shared libraries: libpython3.11.so.1.0: cannot "
        "open shared object file: No such file or directory' >&2\nexit 127\n"
    )
    fake.chmod(0o755)
    cfg = {"python": str(fake), "pythonpath": str(ROOT / "core"), "protocol": bridge.PROTOCOL}
    img, mask = scene(16, 16)
    bufs = bridge.layer_buffers("", (16, 16, "u8", rgba(img).tobytes()), (16, 16, "u8", mask.tobytes()))
    with pytest.raises(bridge.WorkerError) as err:
        with bridge.Session(cfg, timeout=20) as s:
            s.request({"type": "predict", "render": "image"}, bufs)
    e = err.value
    assert e.kind == "not-installed" and "cannot start here (exit status 127" in str(e)
    assert "libpython3.11.so.1.0" in str(e) and "python3 install.py --flatpak" in str(e)


def test_the_cannot_start_message_fits_the_sandbox_it_runs_in(monkeypatch):
    """Inside a Flatpak (/.flatpak-info exists) the fix is --flatpak; inside the Snap, a sentence that it is not
    supported; elsewhere both fixes."""
    real_exists = bridge.os.path.exists
    monkeypatch.delenv("SNAP", raising=False)
    plain = bridge.cannot_start_message("/v/bin/python", 127, "libpython3.11.so.1.0")
    assert "--flatpak" in plain and "recreate the venv" in plain
    monkeypatch.setattr(bridge.os.path, "exists", lambda p: p == "/.flatpak-info" or real_exists(p))
    inside = bridge.cannot_start_message("/v/bin/python", 127, "")
    assert "This GIMP is the Flatpak build" in inside and "`python3 install.py --flatpak`" in inside
    monkeypatch.setattr(bridge.os.path, "exists", real_exists)
    monkeypatch.setenv("SNAP", "/snap/gimp/502")
    snap = bridge.cannot_start_message("/v/bin/python", 127, "")
    assert "Snap build" in snap and "does not support" in snap
