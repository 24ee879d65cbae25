"""exportctl's pure parts: params typed by schema, exit codes, safe paths, the bar's fraction.
(tests/e2e/test_cli.py runs the command against the live worker.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli.download import UnsafeKey, destination
from cli.exit_codes import ExitCode, for_http_status, for_status
from cli.params import BadParam, export_types, params_schema, parse_params
from cli.watch import fraction_done
from web.openapi import document


def test_params_are_typed_by_the_served_schema() -> None:
    schema = params_schema(document(), "reminderEmailSample")
    assert schema is not None
    assert parse_params(["sampleSize=25"], schema) == {"sampleSize": 25}
    wave = params_schema(document(), "codeWave")
    assert parse_params(["waveId=007"], wave) == {"waveId": "007"}  # a string stays text
    with pytest.raises(BadParam, match="sampleSize"):
        parse_params(["sampleSize=ten"], schema)
    with pytest.raises(BadParam, match="key=value"):
        parse_params(["sampleSize"], schema)


def test_every_served_type_is_listed_with_its_params() -> None:
    types = {name: params for name, _, params in export_types(document())}
    assert len(types) == 17
    assert types["codeWave"]["required"] == ["waveId"]
    assert params_schema(document(), "no-such-type") is None


def test_params_json_then_pairs_and_other_types() -> None:
    schema: dict[str, Any] = {
        "properties": {
            "on": {"type": "boolean"},
            "ratio": {"type": "number"},
            "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "ids": {"type": "array"},
        }
    }
    parsed = parse_params(
        ["on=yes", "ratio=0.5", "limit=null", "ids=[1,2]", "extra=x=y"],
        schema,
        params_json='{"on": false, "keep": 1}',
    )
    assert parsed == {
        "on": True,
        "ratio": 0.5,
        "limit": None,
        "ids": [1, 2],
        "keep": 1,
        "extra": "x=y",
    }
    with pytest.raises(BadParam, match="JSON object"):
        parse_params([], schema, params_json="[1]")
    with pytest.raises(BadParam):
        parse_params(["on=maybe"], schema)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("FINISHED", ExitCode.OK),
        ("TRIGGERED", ExitCode.OK),
        ("FAILED", ExitCode.FAILED),
        ("EXPIRED", ExitCode.EXPIRED),
        ("CANCELLED", ExitCode.CANCELLED),
        ("DELETED", ExitCode.DELETED),
        ("COMPLETED", ExitCode.OK),
    ],
)
def test_exit_codes_by_status(status: str, code: ExitCode) -> None:
    assert for_status(status) == code


def test_exit_codes_are_distinct_and_by_http_status() -> None:
    assert len({int(c) for c in ExitCode}) == len(ExitCode)
    assert [for_http_status(s) for s in (401, 403, 404, 409, 400, 503, 500)] == [
        ExitCode.AUTH,
        ExitCode.AUTH,
        ExitCode.NOT_FOUND,
        ExitCode.REJECTED,
        ExitCode.REJECTED,
        ExitCode.UNAVAILABLE,
        ExitCode.ERROR,
    ]


def test_keys_keep_their_folders_but_never_climb_out(tmp_path: Path) -> None:
    assert destination(tmp_path, "c1/2026-01-01/entries.csv") == (
        tmp_path / "c1" / "2026-01-01" / "entries.csv"
    )
    for key in ("../x.csv", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(UnsafeKey):
            destination(tmp_path, key)


def test_the_bar_follows_the_estimate_not_rows_over_documents() -> None:
    # Two rows per document: rows over the count would show 100% at half-way.
    halfway = {
        "status": "TRIGGERED",
        "rowCount": 1000,
        "totalCount": 1000,
        "rowsPerSecond": 100.0,
        "etaSeconds": 10.0,
    }
    assert fraction_done(halfway) == pytest.approx(0.5)
    no_estimate = {
        "status": "TRIGGERED",
        "rowCount": 250,
        "totalCount": 1000,
        "rowsPerSecond": None,
        "etaSeconds": None,
    }
    assert fraction_done(no_estimate) == pytest.approx(0.25)
    assert fraction_done({"status": "PENDING"}) == 0.0
    assert fraction_done({"status": "FINISHED"}) == 1.0
    assert fraction_done({"status": "TRIGGERED", "rowCount": 0, "totalCount": None}) is None


def test_watch_waits_out_a_service_briefly_away() -> None:
    from cli.client import ApiError
    from cli.watch import watch

    answers: list[Any] = [
        {"status": "TRIGGERED", "rowCount": 1},
        ApiError("worker restarting", code="NOT_READY", http_status=503),
        ApiError("no answer", code="UNREACHABLE"),
        {"status": "FINISHED", "rowCount": 2},
    ]

    def fetch() -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    final = watch(fetch, interval=0.0, timeout=None, show_bar=False)
    assert final["status"] == "FINISHED"
    assert answers == []


def test_watch_stops_on_a_refusal() -> None:
    from cli.client import ApiError
    from cli.watch import watch

    answers: list[Any] = [{"status": "PENDING"}]

    def fetch() -> Any:
        if answers:
            return answers.pop(0)
        raise ApiError("forbidden", code="FORBIDDEN", http_status=403)

    with pytest.raises(ApiError):
        watch(fetch, interval=0.0, timeout=None, show_bar=False)


@pytest.mark.parametrize(
    "values",
    [[], [{}], [1], [{"id": "a", "objects": [{"key": 'k\n"q"'}], "n": None}, [], {"b": [1, 2]}]],
)
def test_a_json_array_is_written_item_by_item_as_print_json_writes_it_whole(
    values: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from cli import render

    whole, streamed = io.StringIO(), io.StringIO()
    monkeypatch.setattr(render.out, "file", whole)
    render.print_json(values)
    monkeypatch.setattr(render.out, "file", streamed)
    sizes: list[int] = []

    def pages() -> Any:
        for value in values:
            sizes.append(len(streamed.getvalue()))
            yield value

    render.print_json_array(pages())
    assert streamed.getvalue() == whole.getvalue()
    # Each item was out before the next one was asked for: one page held at a time.
    assert sizes == sorted(set(sizes))
    assert all(size > 0 for size in sizes[1:])
