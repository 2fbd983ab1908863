"""Database engines: SQLite (WAL) by default, PostgreSQL by URL; migrations at start.

Users write plain SQLAlchemy URLs (``sqlite:///path/cb.db``,
``postgresql://user@host/db``); Callboard picks the async driver itself.

Databases fail, and Callboard must say so rather than hang or print a traceback:

- every wait on PostgreSQL has a limit (connecting, one statement, a pooled connection), so a
  database that accepts connections but never answers is noticed in seconds, not after 60 s;
- a statement that timed out counts as a lost connection: SQLAlchemy then discards it and every
  other connection of its pool generation, so connections the outage froze are never reused;
- ``open_database`` turns a database it cannot reach into ``DatabaseUnavailable``, whose message
  is one line saying what is wrong and what to do, with the URL's password masked;
- ``DatabaseProbe`` answers "is the database answering?" within a fixed time, for ``/readyz`` and
  for answers that are taking too long.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from importlib import resources
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, ExceptionContext
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

__all__ = [
    "CONNECT_TIMEOUT",
    "POOL_TIMEOUT",
    "SCHEMA_HEAD",
    "STATEMENT_TIMEOUT",
    "DatabaseProbe",
    "DatabaseURLError",
    "DatabaseUnavailable",
    "async_url",
    "create_engine",
    "describe_failure",
    "is_unavailable",
    "migrate",
    "open_database",
    "within",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}

#: PostgreSQL: seconds to connect (TCP and login); asyncpg's own default is 60.
CONNECT_TIMEOUT = 5.0
#: PostgreSQL: seconds one statement may take before its connection is given up. Answers are
#: point reads (milliseconds); the limit is there for the connection nothing comes back on.
STATEMENT_TIMEOUT = 30.0
#: Seconds to wait for a connection from the pool before failing.
POOL_TIMEOUT = 10.0
#: SQLite: seconds a writer waits for another writer (readers never wait: WAL).
SQLITE_BUSY_TIMEOUT = 30.0

#: SQLSTATEs that mean "you cannot log in" / "no such database".
_LOGIN_REFUSED = ("28000", "28P01")
_NO_DATABASE = "3D000"
#: SQLSTATE classes that mean the server is there but not taking work (08: connection exception,
#: 57P: operator intervention such as a shutdown or "the database system is starting up", 53: out of resources).
_UNAVAILABLE_SQLSTATE = ("08", "57P", "53")


_NETWORK_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH,
                             errno.ETIMEDOUT, errno.ECONNABORTED, errno.EPIPE})


class DatabaseURLError(ValueError):
    """A database URL Callboard cannot use (message says what to write instead)."""


class DatabaseUnavailable(Exception):
    """The database could not be reached or opened; the message is one line for the operator
    (what is wrong, what to do; the URL's password masked), never for chat users."""


def async_url(url: str) -> URL:
    """The async-driver form of a plain SQLAlchemy URL."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise DatabaseURLError(
            f"Could not read the database URL {_mask(url)!r}: write it like sqlite:///path/to/callboard.db "
            "or postgresql://user@host:5432/dbname"
        ) from None
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise DatabaseURLError(f"The database URL {_mask(url)!r} names port {parsed.port}: a port is 1 to 65535.")
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in _ASYNC_DRIVERS:
        raise DatabaseURLError(
            f"Unsupported database {backend!r} in {parsed.render_as_string(hide_password=True)}: "
            "Callboard supports sqlite:/// and postgresql:// URLs"
        )
    if backend == "postgresql" and "sslmode" in parsed.query and "ssl" not in parsed.query:
        # libpq's name (what hosting providers write); asyncpg takes the same modes as ``ssl``
        parsed = parsed.update_query_dict({"ssl": parsed.query["sslmode"]}).difference_update_query(["sslmode"])
    if driver in ("aiosqlite", "asyncpg"):
        return parsed
    return parsed.set(drivername=_ASYNC_DRIVERS[backend])


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``; SQLite files get WAL and their folder created.

    Nothing is connected yet; a SQLite folder that cannot be created raises ``DatabaseUnavailable``.
    """
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        database = target.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailable(describe_failure(exc, url)) from exc
        engine = create_async_engine(target, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA cache_size=-32768")  # 32 MiB: keeps a 100k load under the memory budget
            cur.close()

        return engine
    # No pre-ping (it costs a round trip per checkout, doubling point-read latency, and a ping on a
    # frozen connection hangs like any statement); connections are recycled, and time limits
    # plus _timeouts_are_disconnects discard the ones an outage left behind.
    engine = create_async_engine(
        target, pool_recycle=300, pool_size=5, max_overflow=5, pool_timeout=POOL_TIMEOUT,
        connect_args={"timeout": CONNECT_TIMEOUT, "command_timeout": STATEMENT_TIMEOUT},
    )
    event.listen(engine.sync_engine, "handle_error", _timeouts_are_disconnects)
    return engine


def _timeouts_are_disconnects(context: ExceptionContext) -> None:
    """A statement that timed out left its connection in an unknown state (the answer may still
    arrive, or never): treat it as lost, so SQLAlchemy closes it and the rest of its pool generation."""
    if any(isinstance(e, TimeoutError) for e in _chain(context.original_exception)):
        context.is_disconnect = True


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and what it wraps (SQLAlchemy's ``orig``, ``__cause__``, ``__context__``)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        orig = getattr(exc, "orig", None)
        exc = orig if isinstance(orig, BaseException) else (exc.__cause__ or exc.__context__)


def _sqlstate(exc: BaseException) -> str:
    for e in _chain(exc):
        state = getattr(e, "sqlstate", None)
        if isinstance(state, str) and state:
            return state
    return ""


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot be used right now (unreachable, not answering,
    refusing work), as opposed to a bug in a query. Such failures are "try again later" for users."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    state = _sqlstate(exc)
    if state:
        return state.startswith(_UNAVAILABLE_SQLSTATE) or state in _LOGIN_REFUSED or state == _NO_DATABASE
    for e in _chain(exc):
        if isinstance(e, (TimeoutError, PoolTimeoutError, DisconnectionError, ConnectionError, socket.gaierror)):
            return True
        if isinstance(e, OSError) and e.errno in _NETWORK_ERRNOS:
            return True
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return True
        name = type(e).__name__
        if name in ("ConnectionDoesNotExistError", "InterfaceError", "InternalClientError"):
            return True  # asyncpg: the connection was closed or is unusable
        if name == "OperationalError" and any(
            words in str(e) for words in ("unable to open database file", "database is locked", "disk I/O error")
        ):
            return True  # SQLite
    return False


def _mask(url: str) -> str:
    """``url`` with its password masked; a URL SQLAlchemy cannot read loses all it has before its
    last '@' (where a password would be)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "***@" + url.rpartition("@")[2] if "@" in url else url


def describe_failure(exc: BaseException, url: str) -> str:
    """One line for the operator: what is wrong with the database at ``url`` and what to do.
    The URL's password is masked; no driver message is quoted beyond its gist."""
    shown = _mask(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return f"Cannot open the database ({type(exc).__name__}). Check the database URL."
    fix = "(--database-url, CALLBOARD_DATABASE_URL or database.url in callboard.yaml)"
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "").expanduser()
        for e in _chain(exc):
            if isinstance(e, OSError) and e.filename is not None:
                why = ("a file is in the way" if isinstance(e, (FileExistsError, NotADirectoryError))
                       else (e.strerror or type(e).__name__).lower())
                return (f"Cannot create the folder {e.filename} for the SQLite database {path}: {why}. "
                        f"Choose a path in a folder you can write {fix}.")
        if any("locked" in str(e) for e in _chain(exc)):
            return (f"The SQLite database {path} stayed locked by another writer for {SQLITE_BUSY_TIMEOUT:.0f} s. "
                    "Try again when the other sync has finished.")
        return (f"Cannot open the SQLite database {path} ({type(exc).__name__}): check that its folder exists "
                f"and that you may write there, or choose another path {fix}.")
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    state = _sqlstate(exc)
    if state == _NO_DATABASE:
        name = parsed.database or "?"
        return (f"The database {name!r} does not exist on {where} ({shown}): create it (createdb -h {parsed.host or 'localhost'} "
                f"-p {parsed.port or 5432} {name}) or fix the database name {fix}.")
    if state in _LOGIN_REFUSED:
        return (f"PostgreSQL at {where} refused the login of user {parsed.username or '?'!r} ({shown}): "
                f"check the user name and password {fix}.")
    for e in _chain(exc):
        if isinstance(e, socket.gaierror):
            return f"Cannot find the database host {parsed.host!r} ({shown}): fix the host name {fix}."
        if isinstance(e, ConnectionRefusedError) or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED):
            return (f"Cannot reach the database at {shown}: nothing accepts connections on {where} (refused). "
                    f"Start PostgreSQL there, or fix the host and port {fix}.")
        if isinstance(e, TimeoutError):
            return (f"The database at {shown} did not answer in time: check that PostgreSQL on {where} is "
                    "running and reachable from here.")
    if state:
        return (f"PostgreSQL at {where} is not taking work (SQLSTATE {state}, {type(exc).__name__}; {shown}): "
                "check the server, then try again.")
    return (f"Cannot use the database at {shown} ({type(exc).__name__}): check that PostgreSQL on {where} is "
            f"running and reachable, and the URL {fix}.")


def _alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    location = resources.files("callboard.storage.migrations")
    cfg.set_main_option("script_location", str(location))
    return cfg


#: The newest migration (``storage/migrations/versions``); a test keeps it in step.
SCHEMA_HEAD = "0006"


async def _current_revision(engine: AsyncEngine) -> str | None:
    """The schema revision, or None for a database without one (not a database that is down)."""
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except DBAPIError as exc:
        if is_unavailable(exc):
            raise
        return None


@contextlib.asynccontextmanager
async def sqlite_file_lock(engine: AsyncEngine, name: str) -> AsyncIterator[None]:
    """For a SQLite file: an exclusive ``flock`` on the lock file ``<database>.<name>`` beside it,
    so that the processes sharing the file take turns (polled: a cancelled wait leaves nothing
    behind). Nothing for other databases, an in-memory SQLite (one connection's own) or Windows."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    try:
        import fcntl
    except ImportError:  # Windows: SQLite's own write lock is all there is
        fcntl = None  # type: ignore[assignment]
    if fcntl is None or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.{name}", "a+b") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


async def migrate(engine: AsyncEngine) -> None:
    """Apply every pending Alembic migration (idempotent; serialised on PostgreSQL by an advisory
    lock, on a SQLite file by a lock file: processes opening one new database at once take turns).

    A database already at the newest revision costs one query: Alembic is not even imported.
    """
    if await _current_revision(engine) == SCHEMA_HEAD:
        return
    async with sqlite_file_lock(engine, "migrate-lock"):
        if await _current_revision(engine) == SCHEMA_HEAD:  # another process migrated meanwhile
            return
        await _upgrade(engine)


async def _upgrade(engine: AsyncEngine) -> None:
    from alembic import command

    cfg = _alembic_config()

    def upgrade(sync_conn: Connection) -> None:
        if sync_conn.dialect.name == "postgresql":
            sync_conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7419238)")
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.run_sync(upgrade)


async def open_database(url: str) -> AsyncEngine:
    """Create the engine and bring the schema up to date.

    A database that cannot be reached or opened raises ``DatabaseUnavailable`` (one line, password
    masked); a URL Callboard cannot use raises ``DatabaseURLError``.
    """
    engine = create_engine(url)
    try:
        await migrate(engine)
    except BaseException as exc:
        await asyncio.shield(_dispose_quietly(engine))
        if isinstance(exc, Exception) and is_unavailable(exc):
            log.debug("database unavailable: %s", type(exc).__name__, exc_info=True)
            raise DatabaseUnavailable(describe_failure(exc, url)) from exc
        if isinstance(exc, TypeError) and "unexpected keyword argument" in str(exc):  # a ?parameter= the driver lacks
            raise DatabaseURLError(f"The database URL {_mask(url)!r} has a parameter the database driver does not "
                                   f"take ({exc}): remove it from the URL.") from None
        raise
    return engine


async def _dispose_quietly(engine: AsyncEngine) -> None:
    try:
        await engine.dispose()
    except Exception:  # noqa: BLE001 - closing what could not be opened: nothing left to save
        log.debug("disposing an engine that failed to open", exc_info=True)


async def within(limit: float, work: Awaitable[_T]) -> _T:
    """``work``'s result, or ``TimeoutError`` after ``limit`` seconds. Late work is cancelled but
    not waited for: its clean-up may itself wait on the database connection that hangs."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=limit)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_consume)
        raise TimeoutError(f"no answer within {limit:g} s")
    return task.result()


#: Seconds the probe's own ``SELECT 1`` may take on PostgreSQL before its connection is dropped.
_PROBE_STATEMENT_LIMIT = 2.0


class DatabaseProbe:
    """Is the database answering? Known within ``limit`` seconds, whatever the database does.

    A probe that has not finished within the limit is left to finish on its own (its statement
    has time limits of its own) instead of being cancelled: cancelling a statement waits on the
    connection it hangs on. Callers asking meanwhile share it, so a hung database costs at most
    one waiting probe. A probe that did not answer also marks every pooled connection as stale:
    each is replaced, instead of reused, the next time it is checked out.
    """

    #: Seconds after a failure during which the database is suspect: answers ask sooner.
    SUSPECT_FOR = 10.0

    def __init__(self, engine: AsyncEngine, *, limit: float = 0.8, patience: float = 1.5) -> None:
        self.engine = engine
        self.limit = limit
        self._patience = patience
        self._running: asyncio.Task[None] | None = None
        self._stale_before = 0.0
        self._failed_at = -self.SUSPECT_FOR
        pool = engine.sync_engine.pool
        event.listen(pool, "connect", self._born)
        event.listen(pool, "checkout", self._checkout)

    def _born(self, _dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info["callboard_born"] = time.monotonic()

    def _checkout(self, _dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry,
                  _proxy: PoolProxiedConnection) -> None:
        if record.info.get("callboard_born", 0.0) < self._stale_before:
            raise DisconnectionError("connection opened before the database stopped answering")

    def failed(self, exc: BaseException) -> bool:
        """True when ``exc`` means the database is unavailable (see ``is_unavailable``)."""
        return is_unavailable(exc)

    @property
    def patience(self) -> float:
        """How long an answer may take before asking whether the database still answers
        (``patience`` + ``limit`` stays inside Slack's 3 s); much shorter while the database is
        suspect, since a lookup around the answer may already have spent part of those 3 s."""
        if time.monotonic() - self._failed_at < self.SUSPECT_FOR:
            return min(self._patience, 0.2)
        return self._patience

    def discard_connections(self) -> None:
        """The database failed: replace, on next use, every pooled connection open now (an outage
        may have frozen it), and treat the database as suspect for a while."""
        self._stale_before = self._failed_at = time.monotonic()

    async def _select_one(self) -> None:
        """``SELECT 1`` on a pooled connection. On PostgreSQL the statement gets its own short limit
        (asyncpg's, per call), and a connection that failed it is closed at once, not returned: a
        probe stuck for the whole statement limit would keep ``/readyz`` at 503 after a recovery."""
        async with self.engine.connect() as conn:
            if self.engine.dialect.name != "postgresql":
                await conn.execute(text("SELECT 1"))
                return
            raw = await conn.get_raw_connection()
            try:
                await raw.driver_connection.fetchval("SELECT 1", timeout=_PROBE_STATEMENT_LIMIT)  # type: ignore[union-attr]
            except BaseException:
                await conn.invalidate()
                raise

    async def problem(self) -> str | None:
        """None when the database answered ``SELECT 1`` within the limit; otherwise what is wrong,
        in a few words fit for ``/readyz`` (no URL, no driver message)."""
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._select_one())
            self._running.add_done_callback(_consume)
        running = self._running
        done, _ = await asyncio.wait({running}, timeout=self.limit)
        if not done:
            self.discard_connections()
            return f"database not answering (no reply within {self.limit:g} s)"
        if running.cancelled():
            return "database probe cancelled (shutting down)"
        exc = running.exception()
        if exc is None:
            return None
        self.discard_connections()
        return f"database unavailable: {_gist(exc)}"

    async def close(self) -> None:
        """Stop a probe still waiting on the database (briefly: its clean-up may wait on it too)."""
        if self._running is not None and not self._running.done():
            self._running.cancel()
            await asyncio.wait({self._running}, timeout=self.limit)


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve abandoned work's outcome, so its failure is not reported as never retrieved."""
    if not task.cancelled():
        exc = task.exception()
        if exc is not None:
            log.debug("database probe failed: %s", type(exc).__name__)


def _gist(exc: BaseException) -> str:
    """The kind of failure, for health reports: the innermost exception's type, never its text."""
    for e in _chain(exc):
        if isinstance(e, ConnectionRefusedError) or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED):
            return "connection refused"
        if isinstance(e, TimeoutError):
            return "timed out"
    innermost = list(_chain(exc))[-1]
    return type(innermost).__name__
