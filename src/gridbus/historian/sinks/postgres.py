"""The PostgreSQL sink (the optional ``postgres`` extra): COPY per batch, the server stamps ``created_time``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...errors import SinkRefused, SinkUnavailable
from ...extras import require
from .base import MARKS_TABLE, Key, Mark, Row, redact, scrub

if TYPE_CHECKING:  # psycopg is the optional ``postgres`` extra
    import psycopg


PG_COLUMNS = [
    ("id", "bigint"),
    ("object_id", "text"),
    ("topic", "text"),
    ("source_time", "double precision"),
    ("reception_time", "double precision"),
    ("created_time", "double precision"),
    ("fields", "jsonb"),
]


class PostgresSink:
    SCHEMA = f"""
        CREATE TABLE IF NOT EXISTS samples (
            id BIGSERIAL PRIMARY KEY,
            object_id TEXT NOT NULL,
            topic TEXT NOT NULL,
            source_time DOUBLE PRECISION NOT NULL,
            reception_time DOUBLE PRECISION NOT NULL,
            created_time DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM clock_timestamp()),
            fields JSONB NOT NULL
        );
        CREATE INDEX IF NOT EXISTS samples_series ON samples (topic, object_id, source_time);
        CREATE TABLE IF NOT EXISTS {MARKS_TABLE} (journal TEXT PRIMARY KEY, seq BIGINT NOT NULL);
    """

    def __init__(self, url: str) -> None:
        self._dsn = url
        self.url = redact(url)
        self.conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def _error(self, exc: Exception) -> str:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{self.url}: {scrub(text, self._dsn)}"

    def check(self) -> None:
        require("psycopg", "the PostgreSQL sink")
        import psycopg

        try:
            conn = self._connect()
            with conn.transaction():
                self._check_schema(conn)
                conn.execute(self.SCHEMA)
            with conn.transaction(force_rollback=True):
                conn.execute(
                    "INSERT INTO samples (object_id, topic, source_time, reception_time, fields) "
                    "VALUES ('probe', 'probe', 0, 0, '{}')"
                )
        except SinkUnavailable as exc:
            self.close()
            raise SinkRefused(str(exc)) from None
        except SinkRefused:
            self.close()
            raise
        except psycopg.Error as exc:
            self.close()
            raise SinkRefused(self._error(exc)) from None

    def _check_schema(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        for table, want in (("samples", PG_COLUMNS), (MARKS_TABLE, [("journal", "text"), ("seq", "bigint")])):
            kind = conn.execute(
                "SELECT table_type FROM information_schema.tables WHERE table_schema = current_schema() "
                "AND table_name = %s",
                (table,),
            ).fetchone()
            if kind is None:
                continue
            columns = [
                tuple(r)
                for r in conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
                    "current_schema() AND table_name = %s ORDER BY ordinal_position",
                    (table,),
                )
            ]
            if kind[0] != "BASE TABLE" or columns != want:
                raise SinkRefused(
                    f"{self.url}: its {table} table has another layout "
                    f"({', '.join(f'{n} {t}' for n, t in columns)}); gridbus writes "
                    f"({', '.join(f'{n} {t}' for n, t in want)})"
                )

    def connect(self) -> None:
        self._connect()

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        require("psycopg", "the PostgreSQL sink")
        import psycopg

        try:
            self.conn = conn = psycopg.connect(self._dsn, connect_timeout=3)
        except psycopg.Error as exc:
            self.close()
            raise SinkUnavailable(self._error(exc)) from None
        return conn

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The open connection, opened again if a failure (or the server) closed it."""
        return self.conn if self.conn is not None and not self.conn.closed else self._connect()

    def write(self, rows: list[Row], mark: Mark | None = None) -> None:
        require("psycopg", "the PostgreSQL sink")
        import psycopg

        conn = self._connection()
        try:
            with conn.transaction():
                with conn.cursor() as cur:
                    with cur.copy(
                        "COPY samples (object_id, topic, source_time, reception_time, fields) FROM STDIN"
                    ) as copy:
                        for row in rows:
                            copy.write_row(row)
                    if mark is not None:
                        cur.execute(
                            f"INSERT INTO {MARKS_TABLE} (journal, seq) VALUES (%s, %s) "
                            "ON CONFLICT (journal) DO UPDATE SET seq = excluded.seq",
                            mark,
                        )
        except psycopg.Error as exc:
            self.close()
            raise SinkUnavailable(self._error(exc)) from None

    def forwarded(self, journal: str) -> int:
        require("psycopg", "the PostgreSQL sink")
        import psycopg

        conn = self._connection()
        try:
            with conn.transaction():
                row = conn.execute(f"SELECT seq FROM {MARKS_TABLE} WHERE journal = %s", (journal,)).fetchone()
        except psycopg.Error as exc:
            self.close()
            raise SinkUnavailable(self._error(exc)) from None
        return int(row[0]) if row else 0

    def existing(self, keys: list[Key]) -> set[Key]:
        require("psycopg", "the PostgreSQL sink")
        import psycopg

        if not keys:
            return set()
        conn = self._connection()
        try:
            with conn.transaction():
                found = conn.execute(
                    "SELECT s.object_id, s.topic, s.source_time FROM samples s JOIN "
                    "unnest(%s::text[], %s::text[], %s::float8[]) AS k(o, t, st) "
                    "ON s.topic = k.t AND s.object_id = k.o AND s.source_time = k.st",
                    ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
                ).fetchall()
        except psycopg.Error as exc:
            self.close()
            raise SinkUnavailable(self._error(exc)) from None
        return {tuple(row) for row in found}

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None
