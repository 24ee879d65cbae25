"""Unit tests of the dataset loader's Extended JSON parsing and of the demo dataset (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from bson.int64 import Int64

from core.dataset import DatasetError, read_jsonl
from devstack.demo import DEMO_CAMPAIGN_ID, write_demo_dataset


def _write(tmp_path: Path, text: str, name: str = "entries.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_relaxed_date_is_aware_utc(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"_id": "e1", "createdAt": {"$date": "2026-05-01T17:00:00.123Z"}}\n')

    [doc] = list(read_jsonl(path))

    assert doc["createdAt"] == datetime(2026, 5, 1, 17, 0, 0, 123000, tzinfo=UTC)
    assert doc["createdAt"].utcoffset().total_seconds() == 0


def test_relaxed_date_with_offset_is_converted_to_utc(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"_id": "e1", "createdAt": {"$date": "2026-05-01T19:00:00+02:00"}}')

    [doc] = list(read_jsonl(path))

    assert doc["createdAt"] == datetime(2026, 5, 1, 17, 0, tzinfo=UTC)
    assert doc["createdAt"].tzinfo is not None


def test_canonical_date_and_number_long(tmp_path: Path) -> None:
    line = (
        '{"_id": {"$oid": "0123456789abcdef01234567"}, '
        '"createdAt": {"$date": {"$numberLong": "1777654800000"}}, '
        '"rank": {"$numberLong": "9007199254740993"}, '
        '"count": {"$numberInt": "7"}, "score": {"$numberDouble": "87.5"}}'
    )
    path = _write(tmp_path, line)

    [doc] = list(read_jsonl(path))

    assert doc["createdAt"] == datetime(2026, 5, 1, 17, 0, tzinfo=UTC)
    # Beyond 2**53: must stay an exact integer, not go through a float.
    assert doc["rank"] == 9007199254740993
    assert isinstance(doc["rank"], Int64)
    assert doc["count"] == 7
    assert doc["score"] == 87.5
    assert str(doc["_id"]) == "0123456789abcdef01234567"


def test_unicode_is_kept_verbatim(tmp_path: Path) -> None:
    text = (
        '{"_id": "u1", "firstName": "Zoë 🎸", "lastName": "O\'Brien, \\"Jr.\\"", '
        '"city": "Z\\u00fcrich"}\n'
    )
    path = _write(tmp_path, text, "users.jsonl")

    [doc] = list(read_jsonl(path))

    assert doc == {
        "_id": "u1",
        "firstName": "Zoë 🎸",
        "lastName": 'O\'Brien, "Jr."',
        "city": "Zürich",
    }


def test_blank_lines_are_skipped_and_nested_values_parsed(tmp_path: Path) -> None:
    text = (
        "\n"
        '{"_id": "e1", "optIns": {"artist": true, "promoterIds": ["p1"]}, "phone": null}\n'
        "   \n"
        '{"_id": "e2", "additionalMarketIds": [], "markets": [{"$date": "2026-01-01T00:00:00Z"}]}\n'
        "\n"
    )
    path = _write(tmp_path, text)

    docs = list(read_jsonl(path))

    assert [d["_id"] for d in docs] == ["e1", "e2"]
    assert docs[0]["optIns"] == {"artist": True, "promoterIds": ["p1"]}
    assert docs[0]["phone"] is None
    assert docs[1]["markets"] == [datetime(2026, 1, 1, tzinfo=UTC)]


def test_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "codes.jsonl"
    path.write_bytes('\ufeff{"_id": "c1"}\n'.encode())

    assert list(read_jsonl(path)) == [{"_id": "c1"}]


@pytest.mark.parametrize(
    "bad_line",
    [
        '{"_id": "e3", ',
        '{"_id": "e3", "createdAt": {"$date": "not a date"}}',
        '{"_id": "e3", "n": {"$numberLong": "twelve"}}',
        '{"_id": {"$oid": "zz"}}',
        '["not", "an", "object"]',
    ],
)
def test_bad_line_names_file_and_line(tmp_path: Path, bad_line: str) -> None:
    path = _write(tmp_path, f'{{"_id": "e1"}}\n\n{bad_line}\n{{"_id": "e4"}}\n')

    with pytest.raises(DatasetError) as info:
        list(read_jsonl(path))

    assert f"{path}:3:" in str(info.value)


def test_parsing_is_lazy(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"_id": "e1"}\n{broken\n')

    documents = read_jsonl(path)

    assert next(documents) == {"_id": "e1"}
    with pytest.raises(DatasetError, match=":2:"):
        next(documents)


def test_demo_dataset_is_deterministic_and_parses(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"

    campaign_id = write_demo_dataset(first, entries=300, seed=3)
    write_demo_dataset(second, entries=300, seed=3)

    assert campaign_id == DEMO_CAMPAIGN_ID
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert [f.as_posix() for f in files] == [
        "campaigns.jsonl",
        "codes.jsonl",
        "entries.jsonl",
        "markets.jsonl",
        "promoters.jsonl",
        "scoring.jsonl",
        f"sms-waves/{DEMO_CAMPAIGN_ID}/wave-1.csv",
        "users.jsonl",
    ]
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name

    entries = list(read_jsonl(first / "entries.jsonl"))
    scoring = list(read_jsonl(first / "scoring.jsonl"))
    users = {u["_id"]: u for u in read_jsonl(first / "users.jsonl")}
    codes = list(read_jsonl(first / "codes.jsonl"))
    assert len(entries) == 300
    assert len(scoring) == 300
    assert all(isinstance(d["_id"], str) for d in [*entries, *scoring, *codes, *users.values()])
    assert all(e["createdAt"].tzinfo is not None for e in entries)
    assert sorted(s["rank"] for s in scoring) == list(range(1, 301))
    assert {c["status"] for c in codes} == {"AVAILABLE", "ASSIGNED", "REDEEMED"}
    # Realistic gaps: deleted users, missing phones, awkward names.
    assert any(e["userId"] not in users for e in entries)
    assert any("phone" not in u for u in users.values())
    assert any("," in u["lastName"] and "🎸" not in u["firstName"] for u in users.values())
    assert any('"' in u["firstName"] for u in users.values())
    wave = (first / "sms-waves" / DEMO_CAMPAIGN_ID / "wave-1.csv").read_bytes()
    assert wave.startswith(b"userId\r\n")
