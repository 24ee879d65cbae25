"""The parts of the local stack that make it hold at size, tested without servers.

The FerretDB patch set's mechanics, the generated hostile dataset, and the loader's fast
Extended JSON parser (compared with bson.json_util, the definition).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from bson import json_util

from core.dataset import _JSON_OPTIONS, _parse_line, read_jsonl
from devstack import ferretdb_patch
from devstack.ferretdb_patch import MODULES, OVERLAY_DIR, Edit, Module, PatchError
from devstack.generate import BIG_CAMPAIGN_ID, write_generated_dataset

# -- the patch set ----------------------------------------------------------------------------


def _fake_module(tmp_path: Path) -> Path:
    module = tmp_path / "module"
    (module / "pkg").mkdir(parents=True)
    (module / "pkg" / "a.go").write_text("package pkg\n\nfunc A() { old() }\nfunc B() { old() }\n")
    (module / "pkg" / "a.go").chmod(0o444)  # as in the Go module cache
    return module


def test_edits_are_applied_to_a_copy_and_the_original_is_untouched(tmp_path: Path) -> None:
    source = _fake_module(tmp_path)
    module = Module(
        path="example.com/m",
        version="v1.0.0",
        folder="m",
        edits=(Edit(path="pkg/a.go", old="old()", new="fast()", why="test", count=2),),
    )
    ferretdb_patch.make_patched_copy(module, source, tmp_path / "copy")
    assert (tmp_path / "copy" / "pkg" / "a.go").read_text().count("fast()") == 2
    assert "fast()" not in (source / "pkg" / "a.go").read_text()


@pytest.mark.parametrize("count", [1, 3])
def test_an_edit_that_does_not_match_exactly_refuses_to_build(tmp_path: Path, count: int) -> None:
    module = Module(
        path="example.com/m",
        version="v1.0.0",
        folder="m",
        edits=(Edit(path="pkg/a.go", old="old()", new="fast()", why="test", count=count),),
    )
    with pytest.raises(PatchError, match="exactly"):
        ferretdb_patch.make_patched_copy(module, _fake_module(tmp_path), tmp_path / "copy")


def test_the_build_key_changes_with_every_edit_and_overlay() -> None:
    before = ferretdb_patch.patch_digest()
    first = MODULES[0]
    changed = replace(first, edits=(*first.edits[:-1], replace(first.edits[-1], new="x")))
    assert ferretdb_patch.patch_digest((changed, *MODULES[1:])) != before


def test_every_overlay_exists_and_says_it_is_not_ferretdb() -> None:
    for module in MODULES:
        for name, folder in module.overlays:
            text = (OVERLAY_DIR / name).read_text()
            assert text.startswith("// This file is not part of FerretDB"), name
            package = folder.rsplit("/", 1)[-1]
            assert f"\npackage {package}\n" in text, (name, package)
        for edit in module.edits:
            assert edit.why
            assert edit.old != edit.new


# -- the generated dataset -----------------------------------------------------------------------


def test_the_dataset_is_deterministic_and_hostile(tmp_path: Path) -> None:
    first = write_generated_dataset(tmp_path / "a", users=2000, seed=3)
    second = write_generated_dataset(tmp_path / "b", users=2000, seed=3)
    assert first == second
    for name in ("users", "entries", "scoring", "codes", "markets", "campaigns"):
        assert (tmp_path / "a" / f"{name}.jsonl").read_bytes() == (
            tmp_path / "b" / f"{name}.jsonl"
        ).read_bytes()
    assert first.users == 2000
    assert first.big_entries == 2400

    users = list(read_jsonl(tmp_path / "a" / "users.jsonl"))
    entries = list(read_jsonl(tmp_path / "a" / "entries.jsonl"))
    user_ids = {u["_id"] for u in users}
    markets = {m["_id"] for m in read_jsonl(tmp_path / "a" / "markets.jsonl")}
    assert any(isinstance(u.get("phone"), int) for u in users)
    assert any("phone" not in u for u in users)
    assert any(u.get("phone", "") is None for u in users)
    assert any("\r\n" in u["firstName"] or "\n" in u["firstName"] for u in users)
    assert any('"' in u["lastName"] for u in users)
    assert any(e["userId"] not in user_ids for e in entries)  # deleted users
    assert any(isinstance(e.get("additionalMarketIds"), str) for e in entries)  # lone value
    extras = [
        m
        for e in entries
        if isinstance(e.get("additionalMarketIds"), list)
        for m in e["additionalMarketIds"]
    ]
    assert any(m not in markets for m in extras)  # markets that no longer exist
    assert {e["campaignId"] for e in entries} > {BIG_CAMPAIGN_ID}


# -- the loader's parser ------------------------------------------------------------------------

LINES = [
    '{"_id": "a", "n": 1, "f": 1.5, "s": "Zoë \\u00e9 \\ud83c\\udfa4", "b": true, "z": null}',
    '{"_id": "d", "at": {"$date": "2026-05-01T17:00:00.123Z"}}',
    '{"_id": "c", "at": {"$date": {"$numberLong": "1777654800000"}}, "n": {"$numberLong": "7"}}',
    '{"_id": "i", "n": {"$numberInt": "5"}, "x": {"$numberDouble": "-0.0"}}',
    '{"_id": "o", "ref": {"$oid": "5f0c4b2a9d1e8a3b4c5d6e7f"}}',
    '{"_id": "l", "list": [{"$date": "2026-01-01T00:00:00Z"}, [{"$numberLong": "2"}], "$not"]}',
    '{"_id": "n", "deep": {"a": {"b": {"$date": "2026-01-01T00:00:00+02:00"}}}}',
    '{"_id": "nan", "x": NaN, "y": Infinity}',
    '{"_id": "big", "n": 123456789012345678901234567890}',
    '{"_id": "dec", "d": {"$numberDecimal": "1.10"}}',
    '{"_id": "dollar-key", "v": {"$unknownWrapper": 1, "other": 2}}',
]


@pytest.mark.parametrize("line", LINES)
def test_the_fast_parser_agrees_with_json_util(line: str) -> None:
    try:
        expected = json_util.loads(line, json_options=_JSON_OPTIONS)
    except Exception as exc:  # both must refuse alike
        with pytest.raises(type(exc)):
            _parse_line(line)
        return
    parsed = _parse_line(line)
    assert json_util.dumps(parsed) == json_util.dumps(expected)
    assert parsed == expected or json.dumps(str(parsed)) == json.dumps(str(expected))
