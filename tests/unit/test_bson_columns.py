"""Typed columns from raw BSON: a wrongly typed value makes its document suspect in that
field only, so the engine recomputes only those cells."""

from __future__ import annotations

import bson

from exporters.bson_columns import BatchSchema, FieldType


def _reply(*docs: dict[str, object]) -> bytes:
    return b"".join(bson.encode(doc) for doc in docs)


def test_a_wrong_type_is_suspect_in_its_own_field_and_the_others_stay_typed() -> None:
    schema = BatchSchema(
        {
            "name": FieldType.STR,
            "optIns.artist": FieldType.BOOL,
            "optIns.sms": FieldType.BOOL,
            "optIns.promoterIds": FieldType.STR_LIST,
        }
    )
    batch = schema.decode(
        _reply(
            {"name": 5, "optIns": {"artist": "yes", "sms": True, "promoterIds": ["p"]}},
            {"name": "b", "optIns": {"artist": True, "sms": 1, "promoterIds": "lone"}},
            {"name": "c", "optIns": {"artist": False, "sms": False, "promoterIds": ["q", "r"]}},
        )
    )
    assert batch.suspect_fields == {
        "name": {0},
        "optIns.artist": {0},
        "optIns.sms": {1},
        "optIns.promoterIds": {1},
    }
    assert batch.suspect == {0, 1}
    # The values the suspect documents do not spoil are typed as they are.
    assert batch.columns["optIns.sms"].to_pylist()[0] is True
    assert batch.columns["name"].to_pylist()[1:] == ["b", "c"]
    assert batch.columns["optIns.promoterIds"].to_pylist()[2] == ["q", "r"]


def test_a_reply_read_the_slow_way_is_suspect_in_every_field() -> None:
    # A field named like pymongoarrow's inner name for a list's items forces the slow way.
    schema = BatchSchema({"ids": FieldType.STR_LIST, "name": FieldType.STR})
    batch = schema.decode(_reply({"ids": ["a"], "name": "x"}, {"ids[]": "y", "name": "z"}))
    assert batch.suspect_fields == {"ids": {0, 1}, "name": {0, 1}}


def test_a_reply_decoded_in_pieces_gives_the_same_columns() -> None:
    schema = BatchSchema({"name": FieldType.STR, "n": FieldType.INT, "ids": FieldType.STR_LIST})
    docs = [{"name": f"n{i}", "n": i, "ids": [str(i)] * (i % 3)} for i in range(50)]
    docs[7]["name"] = 7  # a suspect document in the middle of a piece
    raw = _reply(*docs)
    whole = schema.decode(raw, piece_bytes=len(raw))
    for piece_bytes in (1, 100, 1000):
        pieces = schema.decode(raw, piece_bytes=piece_bytes)
        assert {k: v.to_pylist() for k, v in pieces.columns.items()} == {
            k: v.to_pylist() for k, v in whole.columns.items()
        }
        assert (
            pieces.suspect_fields
            == whole.suspect_fields
            == {
                "name": {7},
                "n": set(),
                "ids": set(),
            }
        )
    assert whole.columns["n"].to_pylist() == list(range(50))


def test_market_rows_list_each_entrys_markets_as_the_row_rules_do() -> None:
    from exporters.columnar import _market_rows
    from exporters.joins import markets_of

    entries: list[dict[str, object]] = [
        {"marketId": "m1"},
        {"marketId": "m1", "additionalMarketIds": ["m2", "m1", "m2", "m3"]},
        {"marketId": None, "additionalMarketIds": ["m2", "m2"]},
        {"additionalMarketIds": []},
        {"marketId": "m4", "additionalMarketIds": "m5"},  # a lone value: suspect
        {"marketId": 7, "additionalMarketIds": ["m1", 7, None]},  # not strings: suspect
        {"marketId": "m2", "additionalMarketIds": None},
        {"marketId": "m3", "additionalMarketIds": ["m3"]},
    ]
    schema = BatchSchema({"marketId": FieldType.STR, "additionalMarketIds": FieldType.STR_LIST})
    docs, markets, primary = _market_rows(schema.decode(_reply(*entries)))
    expected = [
        (index, market, number == 0)
        for index, entry in enumerate(entries)
        for number, market in enumerate(
            markets_of(entry.get("marketId"), entry.get("additionalMarketIds"))
        )
    ]
    assert list(zip(docs, markets, primary, strict=True)) == expected
