"""example_etl: a TaskFlow pipeline whose return values flow downstream as XComs."""

from __future__ import annotations

from datetime import datetime, timedelta

from slipstream import dag, task


@dag(
    dag_id="example_etl",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
)
def example_etl() -> None:
    @task
    def extract() -> list[int]:
        return [3, 1, 4, 1, 5, 9, 2, 6]

    @task
    def transform(numbers: list[int]) -> dict[str, float]:
        return {"count": len(numbers), "total": sum(numbers), "mean": sum(numbers) / len(numbers)}

    @task
    def load(summary: dict[str, float], ds: str | None = None) -> None:
        print(f"{ds}: loaded summary {summary}")

    load(transform(extract()))


example_etl()
