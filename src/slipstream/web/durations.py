"""How long something took, as people read it ("4.2s", "3m 05s", "2h 01m"): runs and task
instances show it; one still going counts up to now."""

from __future__ import annotations

from datetime import datetime


def duration_text(start: datetime | None, end: datetime | None, now: datetime) -> str:
    """The time from `start` to `end` (to `now` when not ended); "" before a start."""
    if start is None:
        return ""
    seconds = max(0.0, ((end or now) - start).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"
