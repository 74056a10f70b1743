"""``Curves.to_gimp_preset`` writes a file GIMP 2.10 and 3.x import as the Curves tool's settings.

The reader below mirrors GIMP's own deserializer (GIMP 2.10.34 and 3.0.4 sources), so a file it accepts is one
GIMP accepts, and the state it ends in is the state GIMP's Curves tool ends in:

- scanner (libgimpconfig/gimpscanner.c, gimp_scanner_new): GLib GScanner, ``#`` comments to end of line,
  identifiers ``[A-Za-z][A-Za-z0-9_-]*``, ``-`` is a separate token before numbers, ints and floats
  (no exponents here: we never write them and GIMP's serializer needs none);
- properties (libgimpconfig/gimpconfig-deserialize.c, gimp_config_deserialize_properties): a list of
  ``(name value...)``; a name that is not a serializable property of the class is skipped with its whole
  parenthesised body (gimp_config_skip_unknown_property); anything else that is malformed fails the import;
- booleans ``yes/no/true/false``; enums by nick (or full name); value arrays ``N v1 .. vN``; the ``curve``
  property is GIMP_CONFIG_PARAM_AGGREGATE, i.e. deserialized into the curve of the current ``channel``;
- GimpCurve (app/core/gimpcurve.c): ``curve-type`` smooth|free (free clears the points), ``n-points`` is
  read and ignored, ``points`` are x y pairs in [-1, 1] (x < 0 dropped, for old files), ``point-types``
  smooth|corner, ``n-samples`` must be 256 (param range 256..256), ``samples`` are copied and clamped to [0, 1];
- GimpCurvesConfig (app/operations/gimpcurvesconfig.c): 2.10 has ``linear`` (boolean); 3.0 has ``trc``
  (linear|non-linear|perceptual) and keeps ``linear`` as an alias; 3.2 (master) has ``trc`` only;
  ``channel`` is value|red|green|blue|alpha (the enum also has luminance and rgb, which set_property ignores).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from s2crnet.curves import Curves, knots_from_slopes

# -- a GScanner-alike --------------------------------------------------------------------------------------

TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<comment>\#[^\n]*(\n|$))
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<float>[0-9]+\.[0-9]*|\.[0-9]+)
  | (?P<int>[0-9]+)
  | (?P<ident>[A-Za-z][A-Za-z0-9_-]*)
  | (?P<minus>-)
""",
    re.X,
)


def tokenize(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            raise SyntaxError(f"GIMP's scanner cannot read {text[pos : pos + 20]!r} at offset {pos}")
        pos = m.end()
        kind = m.lastgroup
        if kind in ("ws", "comment"):
            continue
        if kind in ("float", "int") and pos < len(text) and text[pos] in "eE":
            raise SyntaxError(f"number with an exponent at offset {pos}")
        out.append((kind, m.group()))
    return out


def sexprs(tokens: list[tuple[str, str]]) -> list:
    """Nested lists of (kind, text) atoms; unbalanced parentheses fail."""
    stack: list[list] = [[]]
    for tok in tokens:
        if tok[0] == "lp":
            stack.append([])
        elif tok[0] == "rp":
            if len(stack) == 1:
                raise SyntaxError("unbalanced ')'")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    if len(stack) != 1:
        raise SyntaxError("unbalanced '('")
    return stack[0]


# -- property tables (from the GIMP sources) ------------------------------------------------------------------

CHANNEL_NICKS = ["value", "red", "green", "blue", "alpha", "rgb", "luminance"]
TRC_NICKS = ["linear", "non-linear", "perceptual"]

CURVE_PROPS = {
    "curve-type": ("enum", ["smooth", "free"]),
    "n-points": ("int", None),
    "points": ("array", ("double", -1.0, 1.0)),
    "point-types": ("array", ("enum", ["smooth", "corner"])),
    "n-samples": ("int", (256, 256)),
    "samples": ("array", ("double", 0.0, 1.0)),
}
BASE_PROPS = {
    "time": ("int", None),
    "gimp-clip": ("enum", None),
    "gimp-region": ("enum", None),
    "gimp-mode": ("enum", None),
    "gimp-opacity": ("double", (0.0, 1.0)),
}
CONFIG_PROPS = {
    "2.10": {**BASE_PROPS, "linear": ("bool", None), "channel": ("enum", CHANNEL_NICKS), "curve": ("curve", None)},
    "3.0": {
        **BASE_PROPS,
        "trc": ("enum", TRC_NICKS),
        "linear": ("bool", None),
        "channel": ("enum", CHANNEL_NICKS),
        "curve": ("curve", None),
    },
    "3.2": {**BASE_PROPS, "trc": ("enum", TRC_NICKS), "channel": ("enum", CHANNEL_NICKS), "curve": ("curve", None)},
}


def read_scalar(kind, spec, atoms, name):
    """Consume one value of ``kind`` from ``atoms`` (a list, mutated); raise where GIMP's import would fail."""
    if not atoms:
        raise ValueError(f"{name}: missing value")
    negate = False
    if kind in ("int", "double") and atoms[0] == ("minus", "-"):
        negate = True
        atoms.pop(0)
    tok = atoms.pop(0)
    if not isinstance(tok, tuple):
        raise ValueError(f"{name}: expected a value, got a list")
    k, text = tok
    if kind == "bool":
        if k != "ident" or text.lower() not in ("yes", "no", "true", "false"):
            raise ValueError(f"{name}: expected yes or no, got {text!r}")
        return text.lower() in ("yes", "true")
    if kind == "enum":
        if k == "int":
            return int(text)
        if k != "ident" or (spec is not None and text not in spec):
            raise ValueError(f"{name}: invalid value {text!r}")
        return text
    if kind == "int":
        if k != "int":
            raise ValueError(f"{name}: expected an integer, got {text!r}")
        v = -int(text) if negate else int(text)
        if spec is not None and not spec[0] <= v <= spec[1]:
            raise ValueError(f"{name}: {v} outside {spec}")  # g_object_set_property refuses it
        return v
    if kind == "double":
        if k not in ("int", "float"):  # GIMP reads integers into doubles too
            raise ValueError(f"{name}: expected a number, got {text!r}")
        v = -float(text) if negate else float(text)
        if spec is not None and not spec[0] <= v <= spec[1]:
            raise ValueError(f"{name}: {v} outside {spec}")
        return v
    raise AssertionError(kind)


def read_value(kind, spec, body, name):
    atoms = list(body)
    if kind == "array":
        n = read_scalar("int", None, atoms, name)
        elem_kind = spec[0]
        elem_spec = spec[1] if elem_kind == "enum" else spec[1:]
        value = [read_scalar(elem_kind, elem_spec, atoms, name) for _ in range(n)]
    else:
        value = read_scalar(kind, spec, atoms, name)
    if atoms:
        raise ValueError(f"{name}: unexpected {atoms[0]!r} before ')'")  # GIMP expects the closing paren here
    return value


class GimpCurve:
    """The GimpCurve state that matters, after gimp_curve_reset: smooth, points (0,0) (1,1), identity samples."""

    def __init__(self):
        self.curve_type = "smooth"
        self.points = [(0.0, 0.0, "smooth"), (1.0, 1.0, "smooth")]
        self.samples = list(np.arange(256) / 255.0)

    def deserialize(self, items):
        for item in items:
            if not isinstance(item, list) or not item or item[0][0] != "ident":
                raise ValueError(f"curve: expected (property value), got {item!r}")
            name = item[0][1]
            if name not in CURVE_PROPS:
                continue  # skipped like any unknown property
            kind, spec = CURVE_PROPS[name]
            value = read_value(kind, spec, item[1:], name)
            if name == "curve-type":
                if value != self.curve_type and value == "free":
                    self.points = []
                self.curve_type = value
            elif name == "points":
                pts = [
                    (min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)) for x, y in zip(value[::2], value[1::2]) if x >= 0
                ]
                self.points = [
                    (x, y, self.points[i][2] if i < len(self.points) else "smooth") for i, (x, y) in enumerate(pts)
                ]
            elif name == "point-types":
                self.points = [
                    (*(self.points[i][:2] if i < len(self.points) else (0.0, 0.0)), t) for i, t in enumerate(value)
                ]
            elif name == "samples":
                for i, v in enumerate(value[:256]):
                    self.samples[i] = min(max(v, 0.0), 1.0)

    def map(self, x: np.ndarray) -> np.ndarray:
        """gimp_curve_map_value (app/core/gimpcurve-map.c): linear interpolation of the samples."""
        assert self.curve_type == "free", "a smooth curve's samples would be re-rendered from its points"
        return np.interp(x, np.arange(256) / 255.0, np.asarray(self.samples))


def gimp_import(text: str, version: str) -> dict:
    """What GIMP ``version`` holds after Presets ▸ Import of ``text`` into a freshly reset Curves tool."""
    props = CONFIG_PROPS[version]
    state = {
        "trc": "non-linear" if version != "3.2" else "perceptual",
        "linear": False,
        "channel": "value",
        "curves": {ch: GimpCurve() for ch in CHANNEL_NICKS[:5]},
        "skipped": [],
    }
    for item in sexprs(tokenize(text)):
        if not isinstance(item, list) or not item or not isinstance(item[0], tuple) or item[0][0] != "ident":
            raise ValueError(f"top level: expected (property value), got {item!r}")
        name = item[0][1]
        if name not in props:
            state["skipped"].append(name)
            continue
        kind, spec = props[name]
        if kind == "curve":
            state["curves"][state["channel"]].deserialize(item[1:])
            continue
        value = read_value(kind, spec, item[1:], name)
        if name == "linear":
            state["linear"] = value
            if version != "2.10":
                state["trc"] = "linear" if value else "non-linear"
        elif name == "trc":
            state["trc"] = value
        elif name == "channel":
            if value in CHANNEL_NICKS[:5]:
                state["channel"] = value
    return state


# -- tests ------------------------------------------------------------------------------------------------------


def curves_under_test(strength=1.0):
    rng = np.random.default_rng(7)
    slopes = rng.uniform(0.05, 3.0, (3, 64))
    slopes[1, :10] = 1e-9  # a flat stretch: tiny sample values that must not come out with exponents
    return Curves(knots_from_slopes(np.array([0.0, 0.0, 0.12]), slopes), "crm", strength)  # a raised black point


@pytest.mark.parametrize("strength", [1.0, 1.5, 0.3])
@pytest.mark.parametrize("version", ["2.10", "3.0", "3.2"])
def test_gimp_reads_the_curves_exactly(version, strength):
    c = curves_under_test(strength)
    state = gimp_import(c.to_gimp_preset("harmonize"), version)
    lut = c.lut(256)
    for i, ch in enumerate(("red", "green", "blue")):
        curve = state["curves"][ch]
        assert curve.curve_type == "free" and curve.points == []
        assert np.abs(np.asarray(curve.samples) - lut[i]).max() <= 1e-6
        # what GIMP applies to every 8-bit level is lut_u8, exactly
        levels = np.arange(256) / 255.0
        assert np.array_equal(np.rint(curve.map(levels) * 255).astype(np.uint8), c.lut_u8()[i])
    for ch in ("value", "alpha"):
        curve = state["curves"][ch]
        assert curve.curve_type == "free"
        assert np.abs(np.asarray(curve.samples) - np.arange(256) / 255.0).max() <= 1e-12
    assert state["trc"] == "non-linear"  # R'G'B', the space the curves are in, in every version
    assert state["linear"] is False
    assert state["skipped"] == (["trc"] if version == "2.10" else ["linear"] if version == "3.2" else [])


def test_structure_matches_gimp_serialization():
    text = curves_under_test().to_gimp_preset()
    top = sexprs(tokenize(text))
    names = [item[0][1] for item in top]
    assert names == ["linear", "trc"] + ["channel", "curve"] * 5
    channels = [item[1][1] for item in top if item[0][1] == "channel"]
    assert channels == ["value", "red", "green", "blue", "alpha"]  # GIMP_HISTOGRAM_VALUE .. GIMP_HISTOGRAM_ALPHA
    for item in top:
        if item[0][1] != "curve":
            continue
        props = [sub[0][1] for sub in item[1:]]
        assert props == ["curve-type", "points", "point-types", "n-samples", "samples"]  # gimpcurve.c install order
        body = {sub[0][1]: sub[1:] for sub in item[1:]}
        assert body["curve-type"] == [("ident", "free")]
        assert body["points"] == [("int", "0")] and body["point-types"] == [("int", "0")]
        assert body["n-samples"] == [("int", "256")]
        assert body["samples"][0] == ("int", "256") and len(body["samples"]) == 257
    # not a named preset-list entry, which Import would skip as an unknown property and load nothing
    assert "GimpCurvesConfig" not in text
    assert not text.startswith("# GIMP Curves File\n")  # that prefix makes GIMP read the old 2.x cruft format
    assert text.startswith("# GIMP curves tool settings\n") and text.endswith("# end of curves tool settings\n")


def test_identity_curves_give_identity_channels():
    state = gimp_import(Curves.identity().to_gimp_preset(), "3.0")
    for ch in ("value", "red", "green", "blue", "alpha"):
        assert np.abs(np.asarray(state["curves"][ch].samples) - np.arange(256) / 255.0).max() <= 1e-9


@pytest.mark.parametrize("name", ['say "hi"', 'back\\slash \\"', 'two\nlines (with) "parens"\r# and a hash', "ünïcödé"])
def test_any_name_stays_inside_the_comment(name):
    c = curves_under_test()
    text = c.to_gimp_preset(name)
    assert gimp_import(text, "3.0")["skipped"] == []
    assert sexprs(tokenize(text)) == sexprs(tokenize(c.to_gimp_preset("plain")))
    lines = text.splitlines()
    assert lines[0] == "# GIMP curves tool settings" and lines[2] == ""
    assert lines[1] == "# S2CRNet curves: " + " ".join(name.replace("\r", "\n").split("\n")).strip()


def test_reader_rejects_what_gimp_rejects():
    """The reader is strict: each of these would fail (or load nothing) in GIMP."""
    good = curves_under_test().to_gimp_preset()
    bad = [
        good.replace("(n-samples 256)", "(n-samples 257)", 1),
        good.replace("(curve-type free)", "(curve-type freehand)", 1),
        good.replace("(samples 256 ", "(samples 255 ", 1),
        good.replace("(linear no)", "(linear 0)", 1),
        good.replace("(channel red)", "(channel Red)", 1),
        good.replace("(samples 256 0 ", "(samples 256 1e-05 ", 1),
        good.replace("(points 0)", "(points 0", 1),
    ]
    for text in bad:
        with pytest.raises((ValueError, SyntaxError)):
            gimp_import(text, "3.0")
    # the named preset-list form: everything skipped, the curves stay the identity
    state = gimp_import('(GimpCurvesConfig "x" (time 0) (linear no) (channel red) (curve (curve-type free)))', "2.10")
    assert state["skipped"] == ["GimpCurvesConfig"] and state["curves"]["red"].curve_type == "smooth"


@pytest.mark.parametrize("suffix", [".gimp-curves", ".settings", ".txt", ""])
def test_save_writes_a_preset_for_non_json(tmp_path, suffix):
    c = curves_under_test(0.7)
    path = c.save(tmp_path / f"my preset{suffix}")
    text = path.read_text(encoding="utf-8")
    assert text == c.to_gimp_preset("my preset")
    state = gimp_import(text, "2.10")
    assert np.abs(np.asarray(state["curves"]["green"].samples) - c.lut(256)[1]).max() <= 1e-6
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_save_json_is_still_json(tmp_path):
    c = curves_under_test()
    path = c.save(tmp_path / "c.JSON")
    back = Curves.load(path)
    assert np.array_equal(back.base_knots, c.base_knots) and back.strength == c.strength
    with pytest.raises(SyntaxError):
        gimp_import(path.read_text(), "3.0")
