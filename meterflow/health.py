"""What ``meterflow status -f M`` concludes from the facts it gathered (pure: no I/O).

:class:`Facts` is what the CLI collected about one pipeline — the broker, the running job (from
the run's metrics endpoint and Flink's REST API), Kafka's offsets and timestamps, ClickHouse's
last hour and open alerts, the last batch run. :func:`problems` turns them into one-line
diagnoses, worst first ("sink 120 s behind on water-meters.aggregates", "job restarting:
RecordTooLargeException", "no readings for 30 min"); :func:`screen` lays out the whole screen.
Kept apart from the gathering so every rule is tested with exact expected lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

SINK_BEHIND_S = 60.0
"""The serving sink is *behind* when records have waited longer than this."""
JOB_BEHIND_S = 60.0
"""The job is *behind* when the oldest reading it has not read arrived longer ago than this."""
NO_READINGS_S = 30 * 60.0
"""No new reading for this long is worth saying (meters, the bridge or the simulator stopped)."""
CHECKPOINT_LATE_FACTOR = 3.0
"""A checkpoint older than this many checkpoint intervals (plus a minute) is late."""
DLQ_SHARE = 0.05
"""More than this share of the last hour's records dead-lettered is worth saying."""


@dataclass
class Batch:
    """The last batch run (ClickHouse's batch_runs)."""

    finished_at: datetime
    status: str
    days: int
    readings: int
    seconds: float
    message: str


@dataclass
class Facts:
    """Everything ``meterflow status`` knows about one pipeline; None = not known."""

    pipeline: str
    now: datetime
    broker: str | None = None
    """The bootstrap address when the broker answers."""
    running: bool = False
    """A ``meterflow run`` of the pipeline is alive and its metrics answer."""
    job_state: str | None = None
    uptime_s: float | None = None
    restarts: int | None = None
    failure: str | None = None
    """The job's latest exception, one line (from Flink's exception history)."""
    checkpoint_interval_s: float = 10.0
    checkpoint_age_s: float | None = None
    checkpoint_s: float | None = None
    checkpoint_bytes: float | None = None
    readings_waiting: int | None = None
    """Records of <name>.readings the job has not committed yet."""
    oldest_waiting_age_s: float | None = None
    """How long ago the oldest of those arrived."""
    last_reading_age_s: float | None = None
    """How long ago the newest record of <name>.readings arrived (None: the topic is empty)."""
    sink_lag: dict[str, int] = field(default_factory=dict)
    """Result topic → records the serving sink has not read (only while it runs)."""
    sink_behind_s: dict[str, float] = field(default_factory=dict)
    hour_in: int | None = None
    hour_dead_letters: dict[str, int] = field(default_factory=dict)
    open_alerts: dict[str, int] | None = None
    last_batch: Batch | None = None
    web_ui: str | None = None
    metrics_url: str | None = None
    last_run: str | None = None
    """How the last run ended, when none runs now (from last-run.prom)."""
    notes: list[str] = field(default_factory=list)
    """What could not be read, one line each."""


def problems(f: Facts) -> list[str]:
    """What is wrong, worst first, one line each; empty when nothing is."""
    out: list[str] = []
    if f.broker is None:
        return ["Kafka broker not running: start it with `meterflow up`"]
    waiting = f.readings_waiting or 0
    if not f.running:
        if waiting:
            out.append(f"not running: {waiting:,} readings wait; start it with `meterflow run -f <manifest>`")
    else:
        state = f.job_state or "UNKNOWN"
        cause = f": {f.failure}" if f.failure else ""
        if state in ("RESTARTING", "FAILING", "INITIALIZING") and (f.restarts or 0) > 0:
            out.append(f"job restarting{cause} ({f.restarts} restart{'s' if f.restarts != 1 else ''})")
        elif state == "FAILED":
            out.append(f"job failed{cause}")
        elif state not in ("RUNNING", "CREATED", "INITIALIZING"):
            out.append(f"job {state.lower()}{cause}")
        for topic, seconds in sorted(f.sink_behind_s.items(), key=lambda kv: -kv[1]):
            if seconds >= SINK_BEHIND_S:
                out.append(f"sink {seconds:.0f} s behind on {topic} ({f.sink_lag.get(topic, 0):,} records wait)")
                break
        if waiting and (f.oldest_waiting_age_s or 0) >= JOB_BEHIND_S:
            out.append(f"job {f.oldest_waiting_age_s:.0f} s behind: {waiting:,} readings not read yet")
        late_after = CHECKPOINT_LATE_FACTOR * f.checkpoint_interval_s + 60
        if state == "RUNNING" and (f.uptime_s or 0) > late_after:
            if f.checkpoint_age_s is None:
                out.append(f"no checkpoint completed in {f.uptime_s:.0f} s of running")
            elif f.checkpoint_age_s > late_after:
                out.append(
                    f"no checkpoint for {f.checkpoint_age_s:.0f} s (one every {f.checkpoint_interval_s:g} s expected)"
                )
    if f.last_reading_age_s is not None and f.last_reading_age_s >= NO_READINGS_S:
        out.append(f"no readings for {f.last_reading_age_s / 60:.0f} min")
    dead = sum(f.hour_dead_letters.values())
    if f.hour_in and dead / f.hour_in > DLQ_SHARE:
        worst = max(f.hour_dead_letters.items(), key=lambda kv: kv[1])
        out.append(
            f"{dead / f.hour_in:.0%} of the last hour's records were dead letters (most: {worst[0]} {worst[1]:,})"
        )
    if f.last_batch is not None and f.last_batch.status == "failed":
        out.append(f"last batch run failed: {f.last_batch.message}")
    return out


def screen(f: Facts) -> list[str]:
    """The lines ``meterflow status -f`` prints: the verdict, then one line per part."""
    found = problems(f)
    lines = [f"{f.pipeline}: {found[0] if found else 'healthy'}"]
    lines += [f"  also: {p}" for p in found[1:]]
    lines.append(f"  broker      {'running at ' + f.broker if f.broker else 'not running'}")
    if f.running:
        restarts = "" if f.restarts is None else f" ({f.restarts} restart{'s' if f.restarts != 1 else ''})"
        uptime = f" for {duration(f.uptime_s)}" if f.uptime_s else ""
        lines.append(f"  job         {f.job_state or 'unknown'}{uptime}{restarts}; Flink UI {f.web_ui}")
        if f.checkpoint_age_s is None:
            lines.append("  checkpoint  none completed yet")
        else:
            lines.append(
                f"  checkpoint  {duration(f.checkpoint_age_s)} ago, took {f.checkpoint_s or 0:.1f} s, "
                f"{size(f.checkpoint_bytes or 0)}"
            )
    else:
        lines.append(f"  job         not running{'; the last run ended ' + f.last_run if f.last_run else ''}")
    lag = [f"readings {f.readings_waiting:,} (job)"] if f.readings_waiting is not None else []
    lag += [f"{topic.rsplit('.', 1)[-1]} {n:,}" for topic, n in sorted(f.sink_lag.items())]
    lines.append(f"  lag         {' · '.join(lag) + (' (sink)' if f.sink_lag else '') if lag else 'unknown'}")
    arrived = "none yet" if f.last_reading_age_s is None else f"last arrived {duration(f.last_reading_age_s)} ago"
    hour = "" if f.hour_in is None else f"; last hour: {f.hour_in:,} in"
    dlq = sum(f.hour_dead_letters.values())
    if f.hour_in is not None:
        reasons = ", ".join(
            f"{r} {n:,}" for r, n in sorted(f.hour_dead_letters.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        hour += f", {dlq:,} dead letter{'s' if dlq != 1 else ''}" + (f" ({reasons})" if reasons else "")
    lines.append(f"  readings    {arrived}{hour}")
    if f.open_alerts is not None:
        total = sum(f.open_alerts.values())
        rules = ", ".join(f"{r} {n}" for r, n in sorted(f.open_alerts.items()))
        lines.append(f"  alerts      {total} open" + (f": {rules}" if rules else ""))
    if f.last_batch is None:
        lines.append("  batch       no run yet")
    else:
        b = f.last_batch
        lines.append(
            f"  batch       last run {b.finished_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC {b.status}: "
            f"{b.days} day{'s' if b.days != 1 else ''}, {b.readings:,} readings in {b.seconds:.0f} s"
        )
    if f.metrics_url:
        lines.append(f"  metrics     {f.metrics_url}")
    lines += [f"  note: {n}" for n in f.notes]
    return lines


def duration(seconds: float | None) -> str:
    """``42 s``, ``3 min``, ``2 h 13 min``, ``3 d 4 h``."""
    s = max(0.0, seconds or 0.0)
    if s < 90:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    if s < 86400:
        return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"
    return f"{int(s // 86400)} d {int(s % 86400 // 3600)} h"


def size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def root_cause(exception: str, limit: int = 200) -> str:
    """An exception's innermost cause as one line: ``RecordTooLargeException: The message is ...``
    (the package of its class left out)."""
    lines = [line.strip() for line in exception.splitlines() if line.strip()]
    causes = [line.removeprefix("Caused by:").strip() for line in lines if line.startswith("Caused by:")]
    text = causes[-1] if causes else (lines[0] if lines else "unknown cause")
    head, sep, rest = text.partition(":")
    if "." in head and " " not in head:
        head = head.rsplit(".", 1)[-1]
    text = head + sep + rest
    return text if len(text) <= limit else text[: limit - 1] + "…"
