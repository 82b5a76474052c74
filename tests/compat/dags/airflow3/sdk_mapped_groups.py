# Airflow 3: @task_group.expand_kwargs over an upstream XCom of dicts (a parameter left out
# takes its default), trigger rules judged per map index, and one failing index that fails
# only its own path; the task after the group gets what the other indexes shipped.
import pendulum
from airflow.sdk import dag, task, task_group


@dag(schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"))
def sdk_mapped_groups():
    @task
    def orders() -> list[dict]:
        return [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 0}, {"sku": "C", "qty": 5}]

    @task_group
    def fulfil(sku: str, qty: int, warehouse: str = "main"):
        @task
        def reserve(sku: str, qty: int, warehouse: str) -> dict:
            if qty == 0:
                raise ValueError(f"nothing to reserve for {sku}")
            return {"sku": sku, "reserved": qty, "at": warehouse}

        @task(trigger_rule="all_done")
        def report(reservation: dict | None, **context) -> str:
            outcome = (
                f"{reservation['reserved']} at {reservation['at']}" if reservation else "failed"
            )
            return f"{context['ti'].map_index}: {outcome}"

        @task
        def ship(reservation: dict) -> str:
            return f"shipped {reservation['reserved']} x {reservation['sku']}"

        reservation = reserve(sku, qty, warehouse)
        report(reservation)
        return ship(reservation)

    @task(trigger_rule="all_done")
    def invoice(shipments: list[str]) -> list[str]:
        return list(shipments)

    invoice(fulfil.expand_kwargs(orders()))


sdk_mapped_groups()
