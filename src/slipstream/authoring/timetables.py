"""The built-in timetables under Airflow's names (what `airflow.timetables.*` maps onto), for
`schedule=` (or Airflow 2's `timetable=`). Each serializes to a spec the scheduler can run
without importing user code; a Timetable subclass of a DAG file's own cannot, and is refused.
"""

from __future__ import annotations

from slipstream.authoring.schedules import (
    CronTimetable,
    DeltaTimetable,
    NullTimetable,
    OnceTimetable,
)
from slipstream.authoring.timetable import DataInterval, Timetable
from slipstream.authoring.trigger_timetables import (
    ContinuousTimetable,
    CronTriggerTimetable,
    DeltaTriggerTimetable,
    EventsTimetable,
    MultipleCronTriggerTimetable,
)

__all__ = [
    "ContinuousTimetable",
    "CronDataIntervalTimetable",
    "CronTriggerTimetable",
    "DataInterval",
    "DeltaDataIntervalTimetable",
    "DeltaTriggerTimetable",
    "EventsTimetable",
    "MultipleCronTriggerTimetable",
    "NullTimetable",
    "OnceTimetable",
    "Timetable",
]

# Airflow's names for the interval timetables a cron string or a timedelta means.
CronDataIntervalTimetable = CronTimetable
DeltaDataIntervalTimetable = DeltaTimetable
