"""The lifecycle of anomaly alerts: one per meter, from its windows' verdicts.

The same lifecycle as the streaming job's rules (docs/alerts.md): the first anomalous window of a
meter opens an alert, each further one updates it (breaches, the lowest score as its peak), and the
first normal window resolves it. Transitions are rows of ClickHouse's ``alert_transitions_queue``
(the shape the job's alerts topic carries), so ``alerts``, ``alert_events`` and ``meterflow alerts
list`` show them beside the job's. Times are the windows' starts; a transition's version orders an
alert's transitions (ReplacingMergeTree keeps the newest), and a replay writes the same rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

KIND = "anomaly"
OPENED, UPDATED, RESOLVED = "OPENED", "UPDATED", "RESOLVED"
_ORDER = {OPENED: 0, UPDATED: 1, RESOLVED: 2}


@dataclass
class OpenAlert:
    """What an open anomaly alert carries from window to window."""

    alert_id: str
    opened_at: int
    last_seen: int
    breaches: int
    first_score: float
    last_score: float
    peak_score: float
    detail: str


def alert_id(meter_id: str, rule: str, opened_at_ms: int) -> str:
    """A stable id (the job's scheme: the first 8 bytes of SHA-1 of meter, rule and opening time)."""
    return hashlib.sha1(f"{meter_id}|{rule}|{opened_at_ms}".encode()).hexdigest()[:16]


class AnomalyAlerts:
    """Open alerts per meter, and the transitions each newly judged window makes."""

    def __init__(self, rule: str, severity: str, open_alerts: dict[str, OpenAlert] | None = None) -> None:
        self.rule = rule
        self.severity = severity
        self.open: dict[str, OpenAlert] = dict(open_alerts or {})

    def judge(self, verdicts: pd.DataFrame) -> list[dict[str, Any]]:
        """Transitions for ``verdicts`` (``meter_id``, ``window_start`` ms, ``score``, ``anomalous``,
        ``detail``), taken in window order per meter: only the meters with an anomalous window or an
        open alert are looked at (a few rows), and only anomalous windows and the first normal one
        after them make any."""
        out: list[dict[str, Any]] = []
        meters = {*self.open, *verdicts.loc[verdicts["anomalous"], "meter_id"]}
        relevant = verdicts[verdicts["meter_id"].isin(meters)].sort_values(["meter_id", "window_start"], kind="stable")
        for meter, start, score, anomalous, detail in relevant[
            ["meter_id", "window_start", "score", "anomalous", "detail"]
        ].itertuples(index=False):
            alert = self.open.get(meter)
            if anomalous:
                if alert is None:
                    alert = OpenAlert(alert_id(meter, self.rule, start), start, start, 1, score, score, score, detail)
                    self.open[meter] = alert
                    out.append(self._row(meter, alert, OPENED, start, score))
                elif start > alert.last_seen:
                    alert.last_seen, alert.breaches, alert.last_score = start, alert.breaches + 1, score
                    if score < alert.peak_score:
                        alert.peak_score, alert.detail = score, detail
                    out.append(self._row(meter, alert, UPDATED, start, score))
            elif alert is not None and start > alert.last_seen:
                del self.open[meter]
                out.append(self._row(meter, alert, RESOLVED, start, score, resolved_at=start))
        return out

    def _row(
        self, meter: str, a: OpenAlert, transition: str, at: int, score: float, resolved_at: int | None = None
    ) -> dict[str, Any]:
        return {
            "alert_id": a.alert_id,
            "transition": transition,
            "at": _iso(at),
            "meter_id": meter,
            "rule": self.rule,
            "kind": KIND,
            "series": "",
            "measurement_type": "",
            "unit": "",
            "severity": self.severity,
            "state": "RESOLVED" if resolved_at is not None else "OPEN",
            "event_time": _iso(a.opened_at),
            "last_seen": _iso(a.last_seen),
            "resolved_at": _iso(resolved_at) if resolved_at is not None else None,
            "breaches": a.breaches,
            "value": a.first_score,
            "transition_value": score,
            "last_value": a.last_score,
            "peak_value": a.peak_score,
            "condition": "<",
            "threshold": 0.0,
            "escalated": 0,
            "by": "",
            "detail": a.detail,
            "version": at * 4 + _ORDER[transition],
        }


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
