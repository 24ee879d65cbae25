"""Turning a spec's columns into cells: one row function generated per spec, and its reference.

`reference_cells` is the plain reading of the column rules (each column's reader, then
format_cell), kept as the definition the tests compare against. `compile_cells` generates the
same computation as one Python function per spec, once per export type: dotted paths become
inline dict look-ups with the first step of each path read once per row, and only values
that are not already strings go through format_cell. That function is what the engine uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from exporters.formatting import format_cell
from exporters.spec import Column, Row, read_path

CellsFunction = Callable[[Sequence[Row]], list[list[str]]]


def reference_cells(columns: Sequence[Column], rows: Sequence[Row]) -> list[list[str]]:
    """Every column's reader, then format_cell: the definition of a row's cells."""
    return [[format_cell(column.get(row)) for column in columns] for row in rows]


def _path_lines(target: str, parts: Sequence[str], namespace: dict[str, Any]) -> list[str]:
    """Statements reading `parts` from the value in `target` into `target`."""
    if not parts:
        return []
    tail = f"_parts{len(namespace)}"
    namespace[tail] = tuple(parts)
    inner = [f"    {line}" for line in _path_lines(target, parts[1:], namespace)]
    return [
        f"if type({target}) is dict:",
        f"    {target} = {target}.get({parts[0]!r})",
        *inner,
        "else:",
        f"    {target} = _rest({target}, {tail})",
    ]


def compile_cells(columns: Sequence[Column]) -> CellsFunction:
    """A function computing `reference_cells(columns, rows)`, generated for these columns."""
    namespace: dict[str, Any] = {"_fmt": format_cell, "_rest": read_path, "_str": str}
    firsts: dict[str, str] = {}  # first path step -> local variable holding row.get(step)
    lines: list[str] = []
    cells: list[str] = []
    for index, column in enumerate(columns):
        value = f"c{index}"
        if column.path is None:
            namespace[f"_get{index}"] = column.get
            lines.append(f"{value} = _get{index}(row)")
        else:
            first, *rest = column.path
            local = firsts.setdefault(first, f"p{len(firsts)}")
            lines.append(f"{value} = {local}")
            lines.extend(_path_lines(value, rest, namespace))
        cells.append(f"{value} if type({value}) is _str else _fmt({value})")
    prologue = [f"{local} = row.get({first!r})" for first, local in firsts.items()]
    body = "\n".join(f"        {line}" for line in (*prologue, *lines))
    source = (
        "def cells(rows):\n"
        "    out = []\n"
        "    append = out.append\n"
        "    for row in rows:\n"
        f"{body}\n"
        f"        append([{', '.join(cells)}])\n"
        "    return out\n"
    )
    exec(compile(source, f"<cells of {len(columns)} columns>", "exec"), namespace)  # noqa: S102
    function: CellsFunction = namespace["cells"]
    return function
