"""How fast a running export goes and when it should end (`rowsPerSecond`, `etaSeconds`).

Rows are not the unit of work: a source document can give several rows (one per market) or
none (skipped), and a large exclusion list reads the source once per partition. The time
left is therefore estimated from source documents read against the preliminary count
(`totalCount`) times the passes, and the rate shown is rows per second, as users read it.
Both rates are smoothed over the progress reports (an exponential moving average), so one
slow S3 part does not make the estimate jump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_SMOOTHING = 0.3
"""Weight of the newest interval in the moving average."""


@dataclass(frozen=True)
class Estimate:
    rows_per_second: float | None
    eta_seconds: float | None


@dataclass
class ProgressRate:
    """Fed each progress report of one try (cumulative counts, monotonic seconds)."""

    started: float
    total_documents: int | None
    _time: float = 0.0
    _rows: int = 0
    _documents: int = 0
    _row_rate: float | None = None
    _document_rate: float | None = None

    def __post_init__(self) -> None:
        self._time = self.started

    def update(self, *, now: float, rows: int, documents: int, passes: int = 1) -> Estimate:
        elapsed = now - self._time
        if elapsed > 0:
            self._row_rate = _smoothed(self._row_rate, (rows - self._rows) / elapsed)
            self._document_rate = _smoothed(
                self._document_rate, (documents - self._documents) / elapsed
            )
            self._time, self._rows, self._documents = now, rows, documents
        return Estimate(
            rows_per_second=None if self._row_rate is None else round(self._row_rate, 1),
            eta_seconds=self._eta(documents, max(passes, 1)),
        )

    def _eta(self, documents: int, passes: int) -> float | None:
        if self.total_documents is None or not self._document_rate:
            return None
        left = max(self.total_documents * passes - documents, 0)
        eta = left / self._document_rate
        return round(eta, 1) if math.isfinite(eta) else None


def _smoothed(previous: float | None, latest: float) -> float:
    latest = max(latest, 0.0)
    return latest if previous is None else _SMOOTHING * latest + (1 - _SMOOTHING) * previous


def average_rows_per_second(rows: int, seconds: float) -> float | None:
    """A finished run's rate over its whole run; None when it had no measurable time."""
    return round(rows / seconds, 1) if seconds > 0 and rows > 0 else None
