"""PostgreSQL for the stack: creating/dropping databases (with the extensions Prefect needs) and
spelling one URL for each consumer (Prefect: asyncpg, MLflow: psycopg2, libpq for admin)."""

from __future__ import annotations

import contextlib
from typing import Any

from stack.errors import StackError
from stack.net import redact

DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _swap_driver(dsn: str, prefixes: tuple[str, ...], to: str) -> str:
    for prefix in prefixes:
        if dsn.startswith(prefix):
            return to + dsn[len(prefix) :]
    return dsn


def asyncpg_url(dsn: str) -> str:
    """postgresql://... -> postgresql+asyncpg://... (what Prefect's server wants)."""
    prefixes = ("postgresql+psycopg2://", "postgresql+asyncpg://", "postgresql://", "postgres://")
    return _swap_driver(dsn, prefixes, "postgresql+asyncpg://")


def sync_pg_url(dsn: str) -> str:
    """postgresql+asyncpg://... -> postgresql://... (a libpq URL, for psycopg2.connect)."""
    return _swap_driver(
        dsn, ("postgresql+asyncpg://", "postgresql+psycopg2://", "postgres://"), "postgresql://"
    )


def mlflow_pg_url(dsn: str) -> str:
    """A PostgreSQL URL with the psycopg2 driver spelled out (SQLAlchemy 2.1 defaults to psycopg 3,
    which is not installed); other URLs unchanged."""
    prefixes = ("postgresql+asyncpg://", "postgresql://", "postgres://")
    return _swap_driver(dsn, prefixes, "postgresql+psycopg2://")


def _admin_connect(admin_dsn: str, connect_timeout: int | None = None) -> Any:
    import psycopg2

    kwargs = {"connect_timeout": connect_timeout} if connect_timeout else {}
    conn = psycopg2.connect(admin_dsn, **kwargs)
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    return conn


def database_exists(
    name: str, *, admin_dsn: str = DEFAULT_ADMIN_DSN, connect_timeout: int | None = None
) -> bool:
    conn = _admin_connect(admin_dsn, connect_timeout)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cur.fetchone() is not None
    finally:
        conn.close()


def create_postgres_database(
    name: str, *, admin_dsn: str = DEFAULT_ADMIN_DSN, extensions: tuple[str, ...] = ("pg_trgm",)
) -> None:
    """CREATE DATABASE `name` (if missing) and the extensions Prefect needs."""
    from psycopg2 import sql

    if not database_exists(name, admin_dsn=admin_dsn):
        conn = _admin_connect(admin_dsn)
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()
    conn = _admin_connect(admin_dsn.rsplit("/", 1)[0] + f"/{name}")
    try:
        with conn.cursor() as cur:
            for ext in extensions:
                cur.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))
    finally:
        conn.close()


def drop_postgres_database(name: str, *, admin_dsn: str = DEFAULT_ADMIN_DSN) -> None:
    from psycopg2 import sql

    conn = _admin_connect(admin_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()


def ensure_pg_database(url: str, extensions: tuple[str, ...] = ()) -> bool:
    """Create the database named in a postgresql URL when missing (plus extensions). True if created."""
    from sqlalchemy.engine import make_url

    u = make_url(sync_pg_url(url))
    if not u.drivername.startswith("postgresql") or not u.database:
        return False
    admin = u.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    try:
        exists = database_exists(u.database, admin_dsn=admin, connect_timeout=5)
    except Exception as exc:  # noqa: BLE001 (any driver error: unreachable, auth, ...)
        raise StackError(f"cannot reach PostgreSQL at {redact(str(u))}: {exc}") from exc
    if not exists:
        create_postgres_database(u.database, admin_dsn=admin, extensions=extensions)
        return True
    if extensions:  # best effort: the role may lack the right to create extensions in an existing DB
        with contextlib.suppress(Exception):
            create_postgres_database(u.database, admin_dsn=admin, extensions=extensions)
    return False
