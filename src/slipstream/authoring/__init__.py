"""What DAG files import: DAGs, tasks, operators, params, schedules and templating."""
