"""Sensors: BaseSensorOperator (base.py) and the built-in sensors Airflow ships, one module each."""
