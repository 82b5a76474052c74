"""Who a local CLI command acts as, for the audit log: the operating-system user running it
(as Airflow's CLI records), since a local command signs in to nothing."""

from __future__ import annotations

import getpass


def cli_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        return "cli"
