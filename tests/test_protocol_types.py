"""The request options and result entries as types (docs/PROTOCOL.md): defaults, the item overriding the header,
every refusal a sentence, and the JSON each kind of result becomes."""

from __future__ import annotations

import pytest

from s2crnet.protocol import (
    DialogOptions,
    DialogReply,
    ItemOptions,
    ItemResult,
    OptionError,
    PingReply,
    PredictReply,
)


def test_item_options_take_the_header_then_the_item():
    opts = ItemOptions.parse({"variant": "crm", "strength": 0.5, "tables": ["knots"]}, {"strength": "1.25"})
    assert opts == ItemOptions(variant="crm", strength=1.25, tables=("knots",))
    assert ItemOptions.parse({}) == ItemOptions()  # strength 1, render none, no tables
    chosen = opts.with_curves({"format": "s2crnet-curves"}, 0.6)
    assert chosen.curves == {"format": "s2crnet-curves"} and chosen.strength == 0.6 and chosen.variant == "crm"


@pytest.mark.parametrize(
    "header,expect",
    [
        ({"render": "pixels"}, "render must be none, image or target"),
        ({"tables": ["u32"]}, "unknown table 'u32'"),
        ({"place": [1, 2]}, "must map mask names"),
        ({"strength": "strong"}, "strength must be a number"),
    ],
)
def test_item_options_refuse_with_a_sentence(header, expect):
    with pytest.raises(OptionError, match=expect):
        ItemOptions.parse(header)


def test_item_results_as_json():
    assert ItemResult("a", curves={"c": 1}, region=[0, 0, 2, 2], extra={"knots": [[0.0]]}).to_json() == {
        "name": "a",
        "ok": True,
        "curves": {"c": 1},
        "region": [0, 0, 2, 2],
        "knots": [[0.0]],
    }
    assert ItemResult("b").failed("bad-input", "the mask is empty.").to_json() == {
        "name": "b",
        "ok": False,
        "kind": "bad-input",
        "message": "the mask is empty.",
    }
    unticked = ItemResult("c", checked=False, curves={"c": 2}).to_json()
    assert unticked == {"name": "c", "ok": True, "checked": False, "curves": {"c": 2}, "region": None}


def test_dialog_options_and_reply():
    header = {
        "variant": "crm",
        "strength": "0.6",
        "parent_window": 4194311,
        "outputs": [["filter", "Curves filter"], ["in-place", "Change the layer", "pixels"]],
        "output": "filter",
        "items": [{"name": "a"}],
    }
    opts = DialogOptions.parse(header)
    assert opts == DialogOptions(
        "crm",
        0.6,
        None,
        4194311,
        (("filter", "Curves filter", ""), ("in-place", "Change the layer", "pixels")),
        "filter",
    )
    request = opts.request([{"name": "a"}])
    assert request["outputs"][1] == ["in-place", "Change the layer", "pixels"] and request["layers"] == [{"name": "a"}]
    assert DialogOptions.parse({"parent_window": "wayland:xdg-1"}).parent_window is None
    assert DialogOptions.parse({}) == DialogOptions()
    with pytest.raises(OptionError, match="strength must be a number"):
        DialogOptions.parse({"strength": "half"})
    with pytest.raises(OptionError, match="each output must be"):
        DialogOptions.parse({"outputs": ["filter"]})
    assert DialogReply(cancel=True, variant="crm").to_json() == {"cancel": True}
    chosen = DialogReply(False, "crm", 0.6, None, "filter", [ItemResult("a", checked=False)]).to_json()
    assert chosen == {
        "cancel": False,
        "variant": "crm",
        "strength": 0.6,
        "label": None,
        "output": "filter",
        "results": [{"name": "a", "ok": True, "checked": False, "curves": None, "region": None}],
    }


def test_ping_and_predict_replies_as_json():
    assert PingReply("0.3.1", 1, "cpu", ["crm"], "crm", 42).to_json() == {
        "version": "0.3.1",
        "protocol": 1,
        "device": "cpu",
        "variants": ["crm"],
        "default": "crm",
        "pid": 42,
    }
    reply = PredictReply({"c": 1}, [0, 0, 4, 4], {"knots": [[0.0]]}).to_json()
    assert reply == {"curves": {"c": 1}, "region": [0, 0, 4, 4], "knots": [[0.0]]}
    assert PredictReply({"c": 1}).to_json() == {"curves": {"c": 1}, "region": None}
