"""store.import_errors on real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slipstream.store import import_errors
from slipstream.store.db import Database

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_record_upserts_by_filename(db: Database) -> None:
    with db.write() as conn:
        import_errors.record(conn, "/dags/a.py", "SyntaxError: one", NOW)
        import_errors.record(conn, "/dags/b.py", "ImportError: two", NOW)
    later = NOW + timedelta(seconds=5)
    with db.write() as conn:
        import_errors.record(conn, "/dags/a.py", "NameError: three", later)
    with db.read() as conn:
        errors, total = import_errors.list_errors(conn)
    assert total == 2
    assert [(e.filename, e.stacktrace, e.timestamp) for e in errors] == [
        ("/dags/a.py", "NameError: three", later),
        ("/dags/b.py", "ImportError: two", NOW),
    ]


def test_clear_and_paging(db: Database) -> None:
    with db.write() as conn:
        for name in ("a", "b", "c"):
            import_errors.record(conn, f"/dags/{name}.py", "boom", NOW)
    with db.write() as conn:
        assert import_errors.clear(conn, "/dags/b.py")
        assert not import_errors.clear(conn, "/dags/b.py")
    with db.read() as conn:
        page, total = import_errors.list_errors(conn, limit=1, offset=1)
        everything, _ = import_errors.list_errors(conn)
    assert total == 2
    assert [e.filename for e in page] == ["/dags/c.py"]
    assert [e.filename for e in everything] == ["/dags/a.py", "/dags/c.py"]
