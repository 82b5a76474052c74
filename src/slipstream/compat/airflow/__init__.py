"""The `airflow` import path, served by an import hook (never a top-level `airflow` package, so a
real Airflow installed beside Slipstream is neither shadowed nor used). Processes that import DAG
files call install_airflow_hook(); `import slipstream` alone never does.
"""

from slipstream.compat.airflow.finder import AirflowFinder, install_airflow_hook

__all__ = ["AirflowFinder", "install_airflow_hook"]
