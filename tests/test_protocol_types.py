"""The request options and result entries as types (docs/PROTOCOL.md): defaults, the item overriding the header,
every refusal a sentence, and the JSON each kind of result becomes."""

from __future__ import annotations

import pytest

from s2crnet.protocol import ItemOptions, ItemResult, OptionError


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
