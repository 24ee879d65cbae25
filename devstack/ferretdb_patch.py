"""The patch set the local stack applies to a copy of FerretDB v1.24 before building it.

Stock FerretDB v1 on SQLite pushes down only `{_id: <string>}`, and even that misses its index,
so every look-up scans the whole collection: an export costs rows x collection size. The
patch set makes the filters the exporters send (top-level string equality and `$in`, on `_id`
and on the fields the dataset loader indexes) use SQLite's expression indexes. The handler
still applies the whole filter to what SQLite returns, so a pushed-down clause only narrows
the scan and never changes a result. The module comes from the Go module proxy; the copy
lives in the cache and is `replace`d in a generated go.mod, never committed.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MODULES",
    "VERIFY_ENV",
    "Edit",
    "Module",
    "PatchError",
    "make_patched_copy",
    "patch_digest",
]

OVERLAY_DIR = Path(__file__).resolve().parent / "ferretdb" / "overlay"
# Set to 1 in FerretDB's environment, the overlays also run FerretDB's own code on every
# document and panic on any difference from their fast paths (the test suite's stack does).
VERIFY_ENV = "FERRETDB_DEVSTACK_VERIFY_DECODER"


class PatchError(RuntimeError):
    """The module copy does not look as the patch set expects (another FerretDB version?)."""


@dataclass(frozen=True)
class Edit:
    """Replace `old` (which must occur exactly `count` times) by `new` in `path`."""

    path: str
    old: str
    new: str
    why: str
    count: int = 1


@dataclass(frozen=True)
class Module:
    """A Go module the build copies into `folder`, patches, and `replace`s."""

    path: str
    version: str
    folder: str
    edits: tuple[Edit, ...]
    # overlay file name -> the package folder inside the module it is added to
    overlays: tuple[tuple[str, str], ...] = ()
    # names of folders the build does not need, left out of the copy
    skipped: tuple[str, ...] = ()


_RETURN_UNLESS_TRACKING = "\tif !devstackTrackResources {\n\t\treturn\n\t}\n"

_FERRETDB_EDITS = (
    Edit(
        path="internal/backends/sqlite/metadata/metadata.go",
        old="IDColumn = DefaultColumn + \"->'$._id'\"",
        new="IDColumn = DefaultColumn + \"->'_id'\"",
        why=(
            "the unique _id index is built on `->'_id'`; SQLite matches an expression index "
            "only by the same expression, so `->'$._id'` scanned the table"
        ),
    ),
    Edit(
        path="internal/backends/sqlite/collection.go",
        old="\tq += whereClause\n\tq += prepareOrderByClause(params.Sort)\n",
        new=(
            "\twhereClause, args = pushdownWhere(params.Filter)\n"
            "\tq += whereClause\n\tq += prepareOrderByClause(params.Sort)\n"
        ),
        why="equality and $in on top-level string fields become index searches",
    ),
    Edit(
        path="internal/util/resource/resource.go",
        old="func Track(obj any, token *Token) {\n",
        new="func Track(obj any, token *Token) {\n" + _RETURN_UNLESS_TRACKING,
        why="the leak tracker captures a stack trace for every iterator (see the overlay)",
    ),
    Edit(
        path="internal/util/resource/resource.go",
        old="func Untrack(obj any, token *Token) {\n",
        new="func Untrack(obj any, token *Token) {\n" + _RETURN_UNLESS_TRACKING,
        why="nothing was tracked, so there is nothing to untrack",
    ),
    Edit(
        path="internal/handler/sjson/sjson.go",
        old="func Unmarshal(data []byte) (*types.Document, error) {\n",
        new=(
            "func Unmarshal(data []byte) (*types.Document, error) {\n"
            "\treturn devstackUnmarshalOrElse(data, unmarshalOriginal)\n}\n\n"
            "func unmarshalOriginal(data []byte) (*types.Document, error) {\n"
        ),
        why="decoding stored documents field by field with encoding/json (see the overlay)",
    ),
    Edit(
        path="internal/handler/common/projection.go",
        old=(
            "func ProjectDocument(doc, projection, filter *types.Document, inclusion bool) "
            "(*types.Document, error) {\n"
        ),
        new=(
            "func ProjectDocument(doc, projection, filter *types.Document, inclusion bool) "
            "(*types.Document, error) {\n"
            "\treturn devstackProjectOrElse(doc, projection, filter, inclusion, "
            "projectDocumentOriginal)\n}\n\n"
            "func projectDocumentOriginal(doc, projection, filter *types.Document, "
            "inclusion bool) (*types.Document, error) {\n"
        ),
        why="a projection deep-copied every document twice (see the overlay)",
    ),
    Edit(
        path="internal/backends/sqlite/collection.go",
        old=(
            "\torderByClause := prepareOrderByClause(params.Sort)\n"
            '\tsortPushdown := orderByClause != ""\n'
        ),
        new=(
            "\twhereClause, args = pushdownWhere(params.Filter)\n"
            '\tfilterPushdown = whereClause != ""\n'
            "\torderByClause := prepareOrderByClause(params.Sort)\n"
            '\tsortPushdown := orderByClause != ""\n'
        ),
        why="explain shows the query plan of the pushed-down clause (SEARCH ... USING INDEX)",
    ),
    Edit(
        path="internal/handler/msg_find.go",
        old="\titer = common.FilterIterator(iter, closer, params.Filter)\n",
        new="\titer = devstackFindFilter(iter, closer, params.Filter)\n",
        why="look-ups by _id are answered exactly by the pushdown (see the overlay)",
    ),
    *(
        Edit(
            path=f"internal/util/fsql/{name}.go",
            old=f"{receiver}.l.With(fields...).DebugContext(ctx, ",
            new=f"devstackDebug(ctx, {receiver}.l, fields, ",
            why="every statement formatted its arguments for a debug line nobody logs",
            count=6,
        )
        for name, receiver in (("db", "db"), ("tx", "tx"))
    ),
    Edit(
        path="ferretdb/ferretdb.go",
        old="BatchSize:               100,",
        new="BatchSize:               1000,",
        why="one INSERT statement per 1,000 documents instead of 100 loads a dataset faster",
    ),
)

_WIRE_EDITS = (
    Edit(
        path="op_msg.go",
        # SetSections is how every reply is built; the check of incoming messages (in
        # UnmarshalBinaryNocopy) stays, so a NaN sent by a client is still refused.
        old=(
            "\tmsg.sections = sections\n\n\tif debugbuild || CheckNaNs {\n"
            "\t\tif err := msg.check(); err != nil {"
        ),
        new=(
            "\tmsg.sections = sections\n\n\tif debugbuild {\n"
            "\t\tif err := msg.check(); err != nil {"
        ),
        why=(
            "FerretDB sets CheckNaNs, which decodes every reply in full to look for NaN; "
            "stored documents cannot hold NaN (sjson refuses it), so replies never do"
        ),
    ),
)

# SQLite as FerretDB runs it (modernc.org/sqlite, SQLite translated to Go) caps memory-mapped
# reads at 2 GiB whatever `mmap_size` asks for. A database of 1,000,000 users is 2.6 GB, and
# what the loader writes last (the users, every index built after the load) lay beyond the
# cap: each read of those pages was a system call into a page cache that every connection
# keeps for itself. A look-up by `_id` in SQLite alone took 5-6 us per id there, 2.8 us in a
# copy of the same users small enough to be mapped whole (2.1 us at 100,000 users).
_MMAP_CAP = "const SQLITE_MAX_MMAP_SIZE = 2147418112\n"
_SQLITE_EDITS = tuple(
    Edit(
        path=f"lib/sqlite_{platform}.go",
        old=_MMAP_CAP,
        new="const SQLITE_MAX_MMAP_SIZE = 68719476736\n",
        why="map databases up to 64 GiB (the stack's `mmap_size` pragma says how much)",
    )
    for platform in ("linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64")
)

MODULES = (
    Module(
        path="github.com/FerretDB/FerretDB",
        version="v1.24.0",
        folder="FerretDB",
        edits=_FERRETDB_EDITS,
        overlays=(
            ("pushdown_devstack.go", "internal/backends/sqlite"),
            ("resource_devstack.go", "internal/util/resource"),
            ("sjson_devstack.go", "internal/handler/sjson"),
            ("fsql_devstack.go", "internal/util/fsql"),
            ("projection_devstack.go", "internal/handler/common"),
            ("exactfilter_devstack.go", "internal/handler"),
        ),
    ),
    # FerretDB's wire protocol module, at the version FerretDB v1.24 requires (go.mod).
    Module(path="github.com/FerretDB/wire", version="v0.0.7", folder="wire", edits=_WIRE_EDITS),
    # The SQLite driver, at the version FerretDB v1.24 requires; its test data is not copied.
    Module(
        path="modernc.org/sqlite",
        version="v1.31.1",
        folder="sqlite",
        edits=_SQLITE_EDITS,
        skipped=("testdata",),
    ),
)


def patch_digest(modules: Sequence[Module] = MODULES) -> str:
    """Changes whenever the patch set or an overlay file changes (part of the build's key)."""
    sha = hashlib.sha256()
    for module in modules:
        sha.update(f"{module.path}@{module.version}\0{module.folder}\0".encode())
        sha.update("\0".join(module.skipped).encode() + b"\0")
        for edit in module.edits:
            sha.update(f"{edit.path}\0{edit.old}\0{edit.new}\0{edit.count}\0".encode())
        for name, folder in module.overlays:
            sha.update(f"{name}\0{folder}\0".encode())
            sha.update((OVERLAY_DIR / name).read_bytes())
    return sha.hexdigest()


def make_patched_copy(module: Module, module_dir: Path, target: Path) -> None:
    """Copy the downloaded module to `target` (replacing it) and apply its patches there."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(module_dir, target, ignore=shutil.ignore_patterns(*module.skipped))
    # The Go module cache is read-only.
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    for edit in module.edits:
        file = target / edit.path
        text = file.read_text()
        if text.count(edit.old) != edit.count:
            raise PatchError(
                f"{edit.path} of {module.path}@{module.version} does not contain "
                f"{edit.old!r} exactly {edit.count} times; the patch set was written for that "
                "version"
            )
        file.write_text(text.replace(edit.old, edit.new))
    for name, folder in module.overlays:
        shutil.copyfile(OVERLAY_DIR / name, target / folder / name)
