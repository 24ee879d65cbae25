"""`exportctl`: request, watch, list, download and cancel exports; CCPA deletions.

Its own script rather than subcommands of `export-service`: that command is Faust's worker
CLI, which loads the whole worker (settings, Kafka, MongoDB and S3 configuration) before it
parses a word; a client needs none of it and should start at once on any laptop.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import click

from cli import render
from cli.client import ACTIVE, ApiError, ExportServiceClient
from cli.download import UnsafeKey, download_export
from cli.exit_codes import ExitCode, for_status
from cli.params import BadParam, export_types, params_schema, parse_params
from cli.watch import GaveUp, watch

P = ParamSpec("P")
R = TypeVar("R")

EXPORT_STATUSES = ("PENDING", "TRIGGERED", "FINISHED", "FAILED", "EXPIRED", "DELETED", "CANCELLED")
CCPA_STATUSES = ("PENDING", "RUNNING", "COMPLETED", "FAILED")


@dataclass
class Context:
    url: str
    token: str | None
    json: bool
    timeout: float

    def client(self) -> ExportServiceClient:
        return ExportServiceClient(self.url, self.token, timeout=self.timeout)


def _exit(code: ExitCode) -> NoReturn:
    sys.exit(int(code))


def _fail(message: str, code: ExitCode) -> NoReturn:
    render.err.print(f"exportctl: {message}", markup=False)
    _exit(code)


@contextmanager
def _errors_reported(ctx: Context) -> Iterator[None]:
    """API errors become one line on stderr (or the error as JSON) and their exit code."""
    try:
        yield
    except ApiError as exc:
        if ctx.json:
            render.print_json(
                {
                    "error": {"code": exc.code, "message": exc.message, "details": exc.details},
                    "httpStatus": exc.http_status,
                }
            )
        message = str(exc)
        errors = exc.details.get("errors") if isinstance(exc.details, dict) else None
        if errors:
            message += "".join(f"\n  {e.get('loc')}: {e.get('msg')}" for e in errors)
        _fail(message, exc.exit_code)
    except (BadParam, UnsafeKey, FileExistsError) as exc:
        _fail(str(exc), ExitCode.USAGE if isinstance(exc, BadParam) else ExitCode.ERROR)


def api_command(func: Callable[..., R]) -> Callable[..., R]:
    """A subcommand that talks to the API: its `--json` and its errors handled alike."""

    @click.option("--json", "as_json", is_flag=True, help="Print JSON (machine output).")
    @click.pass_obj
    @functools.wraps(func)
    def wrapper(obj: Context, /, *args: Any, as_json: bool, **kwargs: Any) -> R:
        obj.json = obj.json or as_json
        with _errors_reported(obj):
            return func(obj, *args, **kwargs)

    return wrapper


campaign_option = click.option(
    "--campaign",
    "-c",
    "campaign_id",
    required=True,
    help="The campaign id.",
    envvar="EXPORT_SERVICE_CAMPAIGN",
    show_envvar=True,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--url",
    envvar="EXPORT_SERVICE_URL",
    default="http://127.0.0.1:6066",
    show_default=True,
    show_envvar=True,
    help="The service's base URL.",
)
@click.option(
    "--token",
    envvar="EXPORT_SERVICE_TOKEN",
    show_envvar=True,
    help="A bearer JWT with REPORT on the campaign (supreme for CCPA).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (machine output).")
@click.option(
    "--timeout",
    "http_timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for each HTTP answer.",
)
@click.version_option(package_name="export-service")
@click.pass_context
def cli(
    ctx: click.Context, url: str, token: str | None, as_json: bool, http_timeout: float
) -> None:
    """The command line client of export-service.

    \b
    Exit codes: 0 done (or FINISHED), 1 error, 2 usage, 3 FAILED, 4 EXPIRED, 5 CANCELLED,
    6 not authorised (401/403), 7 not found, 8 download verification failed,
    9 service unavailable, 10 request refused (400/409/422), 11 DELETED,
    12 download refused or cut by the object store, 124 --timeout.
    """
    ctx.obj = Context(url=url, token=token, json=as_json, timeout=http_timeout)


@cli.command()
@api_command
def whoami(ctx: Context) -> None:
    """Who the token says you are, and the campaigns you may export."""
    with ctx.client() as client:
        me = client.whoami()
    if ctx.json:
        render.print_json(me)
        return
    campaigns = ", ".join(me["campaigns"]) or "-"
    render.out.print(f"{me['sub']}{' (supreme)' if me['supreme'] else ''}", markup=False)
    render.out.print(f"REPORT on: {campaigns}", markup=False)


@cli.command("types")
@api_command
def list_types(ctx: Context) -> None:
    """The export types and their params."""
    with ctx.client() as client:
        types = export_types(client.openapi())
    if ctx.json:
        render.print_json([{"exportType": n, "description": d, "params": s} for n, d, s in types])
    else:
        render.types_table(types)


def _watch_record(
    ctx: Context,
    client: ExportServiceClient,
    campaign_id: str,
    export_id: str,
    interval: float,
    timeout: float | None,
) -> dict[str, Any]:
    def changed(record: Any) -> None:
        if not ctx.json:
            render.err.print(f"{record['id']}: {record['status']}", markup=False)

    try:
        return dict(
            watch(
                lambda: client.get_export(campaign_id, export_id),
                interval=interval,
                timeout=timeout,
                show_bar=not ctx.json,
                on_change=changed,
            )
        )
    except GaveUp as gave_up:
        if ctx.json:
            render.print_json(dict(gave_up.record))
        _fail(
            f"export {export_id} still {gave_up.record.get('status')} after {timeout} s",
            ExitCode.TIMED_OUT,
        )


def _ended(
    ctx: Context,
    record: dict[str, Any],
    summary: Callable[[dict[str, Any]], None] = render.export_summary,
) -> NoReturn:
    """Print an export (or a CCPA request, with its own summary) and exit by its status."""
    if ctx.json:
        render.print_json(record)
    else:
        summary(record)
    _exit(for_status(str(record["status"])))


watch_options = [
    click.option(
        "--interval", type=float, default=1.0, show_default=True, help="Seconds between polls."
    ),
    click.option(
        "--timeout",
        "wait_timeout",
        type=float,
        default=None,
        help="Give up (exit 124) after this many seconds.",
    ),
]


def _with(options: list[Callable[[Any], Any]]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def apply(func: Callable[P, R]) -> Callable[P, R]:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


@cli.command("request")
@click.argument("export_type")
@campaign_option
@click.option(
    "--param",
    "-p",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter, typed by the type's schema (repeatable).",
)
@click.option("--params-json", help="All params as one JSON object (--param wins).")
@click.option(
    "--watch/--no-watch",
    "then_watch",
    default=False,
    help="Then watch it to the end (exit code by its status).",
)
@_with(watch_options)
@api_command
def request_export(
    ctx: Context,
    export_type: str,
    campaign_id: str,
    pairs: tuple[str, ...],
    params_json: str | None,
    then_watch: bool,
    interval: float,
    wait_timeout: float | None,
) -> None:
    """Request an EXPORT_TYPE export of a campaign (`exportctl types` lists them)."""
    with ctx.client() as client:
        schema = params_schema(client.openapi(), export_type) if pairs else None
        params = parse_params(pairs, schema, params_json)
        record, created = client.request_export(campaign_id, export_type, params)
        if not ctx.json:
            what = "requested" if created else "already requested today (the same export)"
            render.err.print(f"export {record['id']} {what}: {record['status']}", markup=False)
        if then_watch:
            _ended(
                ctx, _watch_record(ctx, client, campaign_id, record["id"], interval, wait_timeout)
            )
    if ctx.json:
        render.print_json(record)
    else:
        render.out.print(record["id"], markup=False)


@cli.command()
@click.argument("export_id")
@campaign_option
@api_command
def status(ctx: Context, export_id: str, campaign_id: str) -> None:
    """One export: status, progress, objects (exit code by its status once it ended)."""
    with ctx.client() as client:
        record = client.get_export(campaign_id, export_id)
    record.pop("downloadUrls", None)
    _ended(ctx, record)


@cli.command("list")
@campaign_option
@click.option("--status", type=click.Choice(EXPORT_STATUSES), help="Only this status.")
@click.option("--type", "export_type", help="Only this export type.")
@click.option(
    "--limit", type=click.IntRange(1, 200), default=50, show_default=True, help="Exports per page."
)
@click.option("--all", "every_page", is_flag=True, help="Follow every page.")
@api_command
def list_exports(
    ctx: Context,
    campaign_id: str,
    status: str | None,
    export_type: str | None,
    limit: int,
    every_page: bool,
) -> None:
    """The campaign's exports, newest first."""
    with ctx.client() as client:
        records = client.list_exports(
            campaign_id, status=status, export_type=export_type, limit=limit, every_page=every_page
        )
        if ctx.json:
            render.print_json_array(records)  # page by page, however long the history
        else:
            render.export_table(records)


@cli.command("watch")
@click.argument("export_id")
@campaign_option
@_with(watch_options)
@api_command
def watch_export(
    ctx: Context, export_id: str, campaign_id: str, interval: float, wait_timeout: float | None
) -> None:
    """A live progress bar (rows, rows/s, ETA) until the export ends; exits by its status."""
    with ctx.client() as client:
        record = _watch_record(ctx, client, campaign_id, export_id, interval, wait_timeout)
    record.pop("downloadUrls", None)
    _ended(ctx, record)


@cli.command()
@click.argument("export_id")
@campaign_option
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to write (keys keep folders).",
)
@click.option("--overwrite", is_flag=True, help="Replace files that exist and differ.")
@api_command
def download(
    ctx: Context, export_id: str, campaign_id: str, directory: Path, overwrite: bool
) -> None:
    """Every object of a FINISHED export, verified by size and sha256."""
    with ctx.client() as client:
        record = client.get_export(campaign_id, export_id)
        if record["status"] != "FINISHED":
            code = for_status(str(record["status"]))
            _fail(
                f"export {export_id} is {record['status']}, not FINISHED: nothing to download",
                ExitCode.REJECTED if code == ExitCode.OK else code,
            )
        results = download_export(
            client,
            record,
            directory,
            overwrite=overwrite,
            show_bar=not ctx.json,
            refresh=lambda: client.get_export(campaign_id, export_id),
        )
    if ctx.json:
        render.print_json([r.as_json() for r in results])
    for result in results:
        if not ctx.json:
            state = "ok" if result.verified else f"MISMATCH: {result.problem}"
            note = " (already there)" if result.skipped else ""
            render.out.print(f"{result.path}  {result.size:,} bytes  {state}{note}", markup=False)
    bad = [r for r in results if not r.verified]
    if bad:
        _fail(
            f"{len(bad)} of {len(results)} objects failed verification; removed",
            ExitCode.VERIFY_FAILED,
        )


@cli.command()
@click.argument("export_id")
@campaign_option
@api_command
def cancel(ctx: Context, export_id: str, campaign_id: str) -> None:
    """Cancel a PENDING or TRIGGERED export (its uploads are aborted)."""
    with ctx.client() as client:
        record = client.cancel_export(campaign_id, export_id)
    if ctx.json:
        render.print_json(record)
    else:
        render.out.print(f"export {record['id']}: {record['status']}", markup=False)


@cli.group()
def ccpa() -> None:
    """CCPA deletions of a user's exported files (a supreme token)."""


@ccpa.command("delete")
@click.argument("user_id")
@click.option(
    "--watch/--no-watch",
    "then_watch",
    default=False,
    help="Then wait for it to end (exit code by its status).",
)
@_with(watch_options)
@api_command
def ccpa_delete(
    ctx: Context, user_id: str, then_watch: bool, interval: float, wait_timeout: float | None
) -> None:
    """Delete USER_ID's files from every non-exempt FINISHED export."""
    with ctx.client() as client:
        request = client.request_ccpa_deletion(user_id)
        if then_watch:
            try:
                request = dict(
                    watch(
                        lambda: client.get_ccpa(request["requestId"]),
                        interval=interval,
                        timeout=wait_timeout,
                        show_bar=False,
                    )
                )
            except GaveUp as gave_up:
                _fail(f"CCPA request still {gave_up.record.get('status')}", ExitCode.TIMED_OUT)
    _ccpa_ended(ctx, request)


def _ccpa_ended(ctx: Context, request: dict[str, Any]) -> NoReturn:
    _ended(ctx, request, render.ccpa_summary)


@ccpa.command("status")
@click.argument("request_id")
@api_command
def ccpa_status(ctx: Context, request_id: str) -> None:
    """One CCPA deletion request and, once COMPLETED, what it deleted."""
    with ctx.client() as client:
        request = client.get_ccpa(request_id)
    _ccpa_ended(ctx, request)


@ccpa.command("list")
@click.option("--status", type=click.Choice(CCPA_STATUSES), help="Only this status.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--all", "every_page", is_flag=True, help="Follow every page.")
@api_command
def ccpa_list(ctx: Context, status: str | None, limit: int, every_page: bool) -> None:
    """CCPA deletion requests, newest first."""
    with ctx.client() as client:
        requests = client.list_ccpa(status=status, limit=limit, every_page=every_page)
        if ctx.json:
            render.print_json_array(requests)
        else:
            render.ccpa_table(requests)


def main() -> None:
    cli(prog_name="exportctl")


__all__ = ["ACTIVE", "cli", "main"]
