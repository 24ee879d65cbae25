"""Typed columns from raw BSON: a wrongly typed value makes its document suspect in that
field only, so the engine recomputes only those cells."""

from __future__ import annotations

import bson

from exporters.bson_columns import BatchSchema, FieldType
from exporters.formatting import format_cell
from exporters.joins import as_list
from exporters.spec import read_path


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


def test_a_whole_number_in_a_string_field_is_a_suspect_value_but_a_known_cell() -> None:
    # Phones stored as numbers (int32 and int64, negative too): the row rules write the
    # int's text, so the cell is known; a filter or a rule still reads the driver's int.
    schema = BatchSchema({"phone": FieldType.STR, "user.phone": FieldType.STR})
    docs: list[dict[str, object]] = [
        {"phone": 5, "user": {"phone": -7}},
        {"phone": bson.Int64(15550000004), "user": {"phone": bson.Int64(-(2**63))}},
        {"phone": "+1 555", "user": {"phone": 0}},
        {"phone": 2**31 - 1, "user": "not a document"},
        {"phone": 3.0, "user": None},
    ]
    raw = _reply(*docs)
    # A number named twice: the driver keeps the last, so its cell is the row rules' too.
    twice = bson.encode({"phone": 1, "other": 2}).replace(b"other", b"phone")
    batch = schema.decode(raw + twice)
    decoded = [bson.decode(raw) for raw in [bson.encode(d) for d in docs]] + [bson.decode(twice)]
    assert batch.suspect_fields == {"phone": {0, 1, 3, 4, 5}, "user.phone": {0, 1, 2, 3}}
    assert batch.cell_suspect_fields == {"phone": {4, 5}, "user.phone": {3}}
    for dotted in ("phone", "user.phone"):
        cells = batch.formatted(dotted).to_list()
        odd = batch.cell_suspect_fields[dotted]
        expected = [format_cell(read_path(doc, dotted.split("."))) for doc in decoded]
        assert [c for i, c in enumerate(cells) if i not in odd] == [
            e or None for i, e in enumerate(expected) if i not in odd
        ]
        # Values stay the driver's: an int, not its text.
        assert batch.values(dotted) == [read_path(doc, dotted.split(".")) for doc in decoded]


def test_a_lone_string_in_a_list_field_is_a_list_of_one_to_as_list_and_to_its_cell() -> None:
    schema = BatchSchema({"ids": FieldType.STR_LIST, "opt.ids": FieldType.STR_LIST})
    docs: list[dict[str, object]] = [
        {"ids": "m1", "opt": {"ids": ""}},
        {"ids": ["m2", "m3"], "opt": {"ids": ["p", 1]}},
        {"ids": 7, "opt": "not a document"},
        {"ids": None, "opt": {"ids": "p2"}},
        {"opt": {"ids": {"a": "b"}}},
    ]
    # Named twice: the driver keeps the last, so the document stays the row rules'.
    twice = bson.encode({"ids": "x", "zzz": "y"}).replace(b"zzz", b"ids")
    batch = schema.decode(_reply(*docs) + twice)
    decoded = [*docs, bson.decode(twice)]
    assert batch.suspect_fields == {"ids": {0, 2, 5}, "opt.ids": {0, 1, 2, 3, 4}}
    assert batch.list_suspect("ids") == {2, 5}
    assert batch.list_suspect("opt.ids") == {1, 2, 4}
    assert batch.cell_suspect_fields == {"ids": {2, 5}, "opt.ids": {1, 2, 4}}
    for dotted in ("ids", "opt.ids"):
        exact = [i for i in range(len(decoded)) if i not in batch.list_suspect(dotted)]
        values = [read_path(doc, dotted.split(".")) for doc in decoded]
        column = batch.columns[dotted].to_pylist()
        assert [column[i] or [] for i in exact] == [as_list(values[i]) for i in exact]
        cells = batch.formatted(dotted).to_list()
        assert [cells[i] or "" for i in exact] == [format_cell(values[i]) for i in exact]
        # Values stay the driver's: the lone string, not a list.
        assert batch.values(dotted) == values


def test_a_reply_whose_bytes_do_not_add_up_is_suspect_in_every_field() -> None:
    schema = BatchSchema({"ids": FieldType.STR_LIST, "name": FieldType.STR})
    good = _reply({"ids": ["a"], "name": "x"})
    # A string that is not UTF-8: the driver refuses it, so the row rules decode (and fail).
    bad_text = good + bson.encode({"name": "z"}).replace(b"z", b"\xff")
    # An element of an unknown type byte (0x20) inside a well-formed document.
    unknown = good + bson.encode({"name": "z"}).replace(b"\x02name", b"\x20name")
    for raw in (bad_text, unknown):
        assert schema.decode(raw).suspect_fields == {"ids": {0, 1}, "name": {0, 1}}


def test_names_like_nested_paths_are_fields_like_any_other() -> None:
    # Fields really called "ids[]" or "optIns.artist" are other fields: nothing shifts.
    schema = BatchSchema({"ids": FieldType.STR_LIST, "optIns.artist": FieldType.BOOL})
    batch = schema.decode(
        _reply(
            {"ids[]": "y", "optIns.artist": "no", "ids": ["a"], "optIns": {"artist": True}},
            {"ids": ["b", "c"], "optIns": {"artist": False}},
        )
    )
    assert batch.suspect == set()
    assert batch.columns["ids"].to_pylist() == [["a"], ["b", "c"]]
    assert batch.columns["optIns.artist"].to_pylist() == [True, False]


def test_every_value_lands_in_its_own_documents_row() -> None:
    # The field sits at another element position in each document, lists of many lengths.
    schema = BatchSchema(
        {
            "name": FieldType.STR,
            "n": FieldType.INT,
            "ids": FieldType.STR_LIST,
            "x.f": FieldType.FLOAT,
        }
    )
    docs: list[dict[str, object]] = []
    for i in range(60):
        doc: dict[str, object] = {f"pad{j}": j for j in range(i % 5)}
        doc |= {"ids": [f"{i}-{j}" for j in range(i % 4)], "n": i if i % 2 else 2**40 + i}
        doc |= {"x": {"pad": "p" * (i % 3), "f": i / 3}} if i % 6 else {}
        doc["name"] = "é" * (i % 7) + str(i)
        docs.append(dict(reversed(doc.items())) if i % 3 else doc)
    docs[7]["name"] = 7  # suspect in its own field only
    docs[8]["ids"] = ["a", None]  # a null item: the row rules read the list
    batch = schema.decode(_reply(*docs))
    assert batch.suspect_fields == {"name": {7}, "n": set(), "ids": {8}, "x.f": set()}
    for i, doc in enumerate(docs):
        if i != 7:
            assert batch.columns["name"].to_pylist()[i] == doc["name"]
        assert batch.columns["n"].to_pylist()[i] == doc["n"]
        if i != 8:
            assert batch.columns["ids"].to_pylist()[i] == doc["ids"]
        nested = doc.get("x")
        assert batch.columns["x.f"].to_pylist()[i] == (
            nested["f"] if isinstance(nested, dict) else None
        )


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


def test_float_cells_are_pythons_repr_at_every_magnitude() -> None:
    import numpy as np
    import pyarrow as pa

    from exporters.bson_columns import format_column

    rng = np.random.default_rng(7)
    anything = rng.integers(0, 2**64, size=200_000, dtype=np.uint64).view(np.float64)
    magnitudes = 10.0 ** rng.uniform(-12, 22, size=200_000) * rng.choice([-1, 1], size=200_000)
    edges = [0.0, -0.0, 1e-4, -1e-4, 9.999999999999999e-05, 1e-05, 1e16, 1e15, 5e-324]
    values = np.concatenate([anything, magnitudes, np.round(magnitudes, 3), edges, [np.inf]])
    values = values[~np.isnan(values)]
    array = pa.array([*values.tolist(), None], type=pa.float64())
    expected = [*map(repr, values.tolist()), None]
    assert format_column(array, FieldType.FLOAT).to_list() == expected
