"""Nothing is lost during a sync (issue 10, point 6), on SQLite and PostgreSQL.

Entities that move between files (a catalog root that turns into a folder, a Location whose
targets change, one entity moving from one file to another) exist at every instant: a reader
polling during the sync never sees fewer, and a ``callboard sync`` killed with SIGKILL at any
point leaves every entity answerable, each one either where the previous catalog had it or
where the new one has it. The held case: kill -9 during a cold sync and during an update leaves
a database the next sync completes.

The watcher reads the database from its own thread, event loop and engine (a separate
connection), so it sees what any other reader would see, while the sync runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from callboard.storage import repo
from callboard.storage.engine import create_engine

from ..catalog.test_sync import _graph_matches_storage

N = 5000  # entities (10 groups and components)
FILES = 250  # the kill tests split them over FILES files (each killed run starts a process: kept short)
READ_FILES = 500  # the move-while-reading tests, over more
POLL_S = 0.003


def _doc(i: int, rev: int = 1) -> str:
    if i < 10:
        return (f"apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-{i}\n"
                f"  description: rev-{rev}\nspec:\n  type: team\n  children: []\n")
    return (f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc-{i:05d}\n"
            f"  description: rev-{rev}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-{i % 10}\n")


def _key(i: int) -> str:
    return f"group:default/team-{i}" if i < 10 else f"component:default/svc-{i:05d}"


KEYS = frozenset(_key(i) for i in range(N))


def _one_file(path: Path, n: int = N) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n".join(_doc(i) for i in range(n)))
    return path


def _split(folder: Path, files: int = FILES, n: int = N, *, rev: int = 1, name: str = "catalog-info.yaml") -> list[Path]:
    """The same entities over ``files`` files, ``folder/part-NNNN/<name>``; entity i is in file i % files."""
    out = []
    for f in range(files):
        path = folder / f"part-{f:04d}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("---\n".join(_doc(i, rev) for i in range(f, n, files)))
        out.append(path)
    return out


def _location(name: str, *targets: str) -> str:
    lines = "\n".join(f"    - {t}" for t in targets)
    return f"apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: {name}\nspec:\n  targets:\n{lines}\n"


@dataclass
class Watch:
    """What the poller saw: each sample is one row of its query."""

    samples: list[tuple[Any, ...]] = field(default_factory=list)


class Watcher:
    """Reads the database from another thread (its own loop, engine and connections).

    ``query`` answers synchronously (it may be called from a sync callback of the code under
    test); ``polling`` runs one query every few milliseconds until the block ends.
    """

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="watcher", daemon=True)
        self._thread.start()
        self._engine = self._run(self._make(url))

    async def _make(self, url: str) -> Any:
        return create_engine(url)

    def _run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _query(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        async with self._engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(text(sql), params)]

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        return self._run(self._query(sql, params))

    def one(self, sql: str, **params: Any) -> tuple[Any, ...]:
        (row,) = self.query(sql, **params)
        return row

    def polling(self, sql: str, *, on_sample: Callable[[tuple[Any, ...]], None] | None = None,
                **params: Any) -> _Polling:
        return _Polling(self, sql, params, on_sample)

    def close(self) -> None:
        self._run(self._engine.dispose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class _Polling:
    def __init__(self, watcher: Watcher, sql: str, params: dict[str, Any],
                 on_sample: Callable[[tuple[Any, ...]], None] | None) -> None:
        self.watch = Watch()
        self._watcher = watcher
        self._sql, self._params, self._on_sample = sql, params, on_sample
        self._stop = asyncio.Event()
        self._future: concurrent.futures.Future[None] | None = None

    async def _poll(self) -> None:
        self._stop = asyncio.Event()
        while not self._stop.is_set():
            async with self._watcher._engine.connect() as conn:
                row = tuple((await conn.execute(text(self._sql), self._params)).one())
            self.watch.samples.append(row)
            if self._on_sample is not None:
                self._on_sample(row)
            try:
                await asyncio.wait_for(self._stop.wait(), POLL_S)
            except TimeoutError:
                pass

    def __enter__(self) -> Watch:
        self._future = asyncio.run_coroutine_threadsafe(self._poll(), self._watcher._loop)
        return self.watch

    def __exit__(self, *exc: object) -> None:
        assert self._future is not None
        self._watcher._loop.call_soon_threadsafe(lambda: self._stop.set())
        self._future.result(30)


@pytest.fixture
def watcher(database_url: str) -> Iterator[Watcher]:
    w = Watcher(database_url)
    yield w
    w.close()


#: the N generated entities (a Location entity listing them is not one of them), and how many the old file holds
COUNT_AND_OLD = ("SELECT count(*), coalesce(sum(CASE WHEN location_key = :old THEN 1 ELSE 0 END), 0) FROM entities "
                 "WHERE kind <> 'Location'")


def _check_all_there(watcher: Watcher, allowed: Callable[[str, str], bool]) -> None:
    """Every entity is there once, each held by a location ``allowed`` accepts for it."""
    rows = watcher.query("SELECT key, location_key FROM entities")
    keys = [k for k, _ in rows]
    assert len(keys) == N and set(keys) == KEYS
    misplaced = [(k, loc) for k, loc in rows if not allowed(k, loc)]
    assert not misplaced, misplaced[:5]


async def _answers(make_app, url: str, indexes: list[int]) -> None:
    """A fresh Callboard (a new process would do the same) answers ``owner`` for each entity."""
    app = await make_app(url)
    try:
        for i in indexes:
            name = f"team-{i}" if i < 10 else f"svc-{i:05d}"
            reply = await app.ask(f"owner {name}")
            assert reply.status.value == "ok", (name, reply.summary)
            assert reply.data["entity"] == _key(i)
    finally:
        await app.close()


# --- 1. moving while a reader polls ----------------------------------------------------------


async def _move_while_polling(make_app, database_url: str, watcher: Watcher, first: tuple[str, ...],
                              second: tuple[str, ...], old: str, rewrite: Callable[[], None] | None = None) -> None:
    app = await make_app(database_url, resident=True)
    try:
        summary = await app.sync(first)
        assert not summary.errors and summary.added >= N
        if rewrite is not None:
            rewrite()
        after_each: list[int] = []

        def progress(_p: object) -> None:
            after_each.append(watcher.one(COUNT_AND_OLD, old=old)[0])

        with watcher.polling(COUNT_AND_OLD, old=old) as seen:
            moved = await app.sync(second, on_progress=progress)
        assert not moved.errors, moved.errors[:3]
        counts = [s[0] for s in seen.samples] + after_each
        olds = [s[1] for s in seen.samples]
        assert min(counts) >= N, f"a reader saw {min(counts)} of {N} entities during the sync"
        # the poller really watched the move happen (some samples saw it half done)
        assert any(0 < o < N for o in olds), f"{len(olds)} samples, none during the move"
        final = watcher.one(COUNT_AND_OLD, old=old)
        assert final == (N, 0)
        assert watcher.one("SELECT count(*) FROM locations WHERE key = :old", old=old) == (0,)
        # the in-memory index followed the feed: every entity is findable, nothing extra
        assert set(app.catalog.index.keys()) >= KEYS
        reply = await app.ask("owner svc-01234")
        assert reply.data["entity"] == "component:default/svc-01234"
    finally:
        await app.close()


async def test_moving_the_root_to_a_folder_loses_nothing_at_any_instant(
    tmp_path: Path, make_app, database_url: str, watcher: Watcher
) -> None:
    one = _one_file(tmp_path / "one" / "catalog.yaml")
    _split(tmp_path / "split", READ_FILES)
    await _move_while_polling(make_app, database_url, watcher, (str(one),), (str(tmp_path / "split"),),
                              old=f"file:{one}")


async def test_a_location_whose_targets_change_loses_nothing_at_any_instant(
    tmp_path: Path, make_app, database_url: str, watcher: Watcher
) -> None:
    root = tmp_path / "root.yaml"
    root.write_text(_location("root", "./all.yaml"))
    all_in_one = _one_file(tmp_path / "all.yaml")
    parts = _split(tmp_path / "parts", READ_FILES, name="part.yaml")

    def retarget() -> None:
        root.write_text(_location("root", *(f"./{p.relative_to(tmp_path)}" for p in parts)))

    await _move_while_polling(make_app, database_url, watcher, (str(root),), (str(root),),
                              old=f"file:{all_in_one}", rewrite=retarget)


@pytest.mark.parametrize("direction", ["to-earlier", "to-later"])
async def test_an_entity_moving_between_files_is_taken_over_without_a_gap_or_a_conflict(
    tmp_path: Path, make_app, database_url: str, watcher: Watcher, direction: str
) -> None:
    """Files are read in path order: the new file is read before the old one ("to-earlier") or
    after it; either way the entity is there after every location's write and at the end, held
    by the new file, and no conflict is reported (the old file no longer claims it)."""
    a, b = tmp_path / "a" / "catalog-info.yaml", tmp_path / "b" / "catalog-info.yaml"
    a.parent.mkdir()
    b.parent.mkdir()
    moving = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: moving\nspec:\n" \
             "  type: service\n  lifecycle: production\n  owner: team-0\n"
    stay_a, stay_b = _doc(0), _doc(11)
    src, dst = (b, a) if direction == "to-earlier" else (a, b)
    src.write_text((stay_a if src == a else stay_b) + "---\n" + moving)
    dst.write_text(stay_a if dst == a else stay_b)
    app = await make_app(database_url, resident=True)
    try:
        assert not (await app.sync((str(tmp_path),))).errors
        src.write_text(stay_a if src == a else stay_b)
        dst.write_text((stay_a if dst == a else stay_b) + "---\n" + moving.replace("production", "deprecated"))
        present: list[int] = []
        summary = await app.sync(
            (str(tmp_path),),
            on_progress=lambda _p: present.append(
                watcher.one("SELECT count(*) FROM entities WHERE key = 'component:default/moving'")[0]),
        )
        assert not summary.errors, summary.errors
        assert present == [1, 1]
        (holder,) = watcher.one("SELECT location_key FROM entities WHERE key = 'component:default/moving'")
        assert holder == f"file:{dst}"
        assert watcher.one("SELECT count(*) FROM catalog_errors") == (0,)
        moved = await app.catalog.get("component:default/moving")
        assert moved is not None and moved.spec["lifecycle"] == "deprecated"
        assert "component:default/moving" in app.catalog.index
        await _graph_matches_storage(app)
        again = await app.sync((str(tmp_path),))  # the steady state: nothing to do, no conflict
        assert not again.errors and (again.added, again.updated, again.removed) == (0, 0, 0)
    finally:
        await app.close()


@pytest.mark.parametrize("direction", ["to-earlier", "to-later"])
async def test_a_location_entity_moving_between_files_keeps_what_it_lists(
    tmp_path: Path, make_app, database_url: str, watcher: Watcher, direction: str
) -> None:
    """A Location entity moves from one file to another: the file it lists (and that file's
    entities) stay, though the old file no longer lists it when it is read."""
    root = tmp_path / "root.yaml"
    root.write_text(_location("root", "./a.yaml", "./b.yaml"))
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    (tmp_path / "c.yaml").write_text(_doc(12))
    sub = _location("sub", "./c.yaml")
    src, dst = (b, a) if direction == "to-earlier" else (a, b)
    src.write_text(_doc(0) + "---\n" + sub)
    dst.write_text(_doc(11))
    app = await make_app(database_url, resident=True)
    try:
        assert not (await app.sync((str(root),))).errors
        src.write_text(_doc(0))
        dst.write_text(_doc(11) + "---\n" + sub)
        present: list[tuple[Any, ...]] = []
        summary = await app.sync((str(root),), on_progress=lambda _p: present.append(
            watcher.one("SELECT count(*) FROM entities WHERE key IN (:c, 'location:default/sub')", c=_key(12))))
        assert not summary.errors, summary.errors
        assert summary.removed == 0
        assert set(present) == {(2,)}
        rows = dict(watcher.query("SELECT key, location_key FROM entities"))
        assert rows["location:default/sub"] == f"file:{dst}" and rows[_key(12)] == f"file:{tmp_path / 'c.yaml'}"
        assert watcher.one("SELECT parent_key FROM locations WHERE key = :c", c=f"file:{tmp_path / 'c.yaml'}") == (
            f"file:{dst}",)
        await _graph_matches_storage(app)
        again = await app.sync((str(root),))
        assert not again.errors and (again.added, again.updated, again.removed) == (0, 0, 0)
    finally:
        await app.close()


@pytest.mark.parametrize("listed", ["optional-first", "optional-last"])
async def test_entities_of_an_optional_target_that_goes_away_move_without_a_gap(
    tmp_path: Path, make_app, database_url: str, watcher: Watcher, listed: str
) -> None:
    root = tmp_path / "root.yaml"
    targets = ["./opt.yaml", "./a.yaml"] if listed == "optional-first" else ["./a.yaml", "./opt.yaml"]
    root.write_text(_location("root", *targets).replace("spec:\n", "spec:\n  presence: optional\n"))
    (tmp_path / "a.yaml").write_text(_doc(0))
    (tmp_path / "opt.yaml").write_text(_doc(11))
    app = await make_app(database_url)
    try:
        assert not (await app.sync((str(root),))).errors
        (tmp_path / "opt.yaml").unlink()
        (tmp_path / "a.yaml").write_text(_doc(0) + "---\n" + _doc(11))
        # (the root is read again: a Location's "optional" is known only from its text, so an
        # unchanged root's missing optional target is reported as missing, and keeps its entities)
        root.write_text(root.read_text() + "# opt.yaml is gone\n")
        present: list[tuple[Any, ...]] = []
        summary = await app.sync((str(root),), on_progress=lambda _p: present.append(
            watcher.one("SELECT location_key FROM entities WHERE key = :k", k=_key(11))))
        assert not summary.errors, summary.errors
        assert len(present) == 3  # each row is there: the entity was held by one file or the other
        assert watcher.one("SELECT location_key FROM entities WHERE key = :k", k=_key(11)) == (
            f"file:{tmp_path / 'a.yaml'}",)
        assert watcher.one("SELECT status, entity_count FROM locations WHERE key = :k",
                           k=f"file:{tmp_path / 'opt.yaml'}") == ("missing", 0)
    finally:
        await app.close()


async def test_a_real_duplicate_still_keeps_the_first_and_reports_the_other(
    tmp_path: Path, make_app, database_url: str
) -> None:
    """The takeover is for moves only: while the old file still defines the entity, it keeps it,
    whichever file is read first."""
    a, b = tmp_path / "a" / "catalog-info.yaml", tmp_path / "b" / "catalog-info.yaml"
    a.parent.mkdir()
    b.parent.mkdir()
    b.write_text(_doc(11))
    a.write_text(_doc(0))
    app = await make_app(database_url)
    try:
        await app.sync((str(tmp_path),))
        a.write_text(_doc(0) + "---\n" + _doc(11).replace("production", "deprecated"))  # a is read first
        summary = await app.sync((str(tmp_path),))
        entity = await app.catalog.get(_key(11))
    finally:
        await app.close()
    assert entity is not None and entity.location == f"file:{b}"
    (err,) = summary.errors
    assert err.name == "ConflictError" and err.file == str(a) and "already defined by" in err.message


async def test_a_sync_that_dies_before_its_removals_leaves_them_to_the_next_one(
    tmp_path: Path, make_app, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The removals come last; a sync that dies on the first of them (as a killed one would)
    has removed nothing, and the next sync finds the same removals to do: the locations it
    wrote were not marked as synced."""
    root = tmp_path / "root.yaml"
    root.write_text(_location("root", "./a.yaml", "./b.yaml"))
    (tmp_path / "a.yaml").write_text("---\n".join([_doc(0), _doc(11), _doc(12)]))
    (tmp_path / "b.yaml").write_text(_doc(13))
    app = await make_app(database_url, resident=True)
    try:
        assert not (await app.sync((str(root),))).errors
        root.write_text(_location("root", "./a.yaml"))
        (tmp_path / "a.yaml").write_text("---\n".join([_doc(0), _doc(11)]))

        async def dies(*_args: object, **_kwargs: object) -> list[str]:
            raise RuntimeError("the process died here")

        monkeypatch.setattr(repo, "delete_entities_of", dies)
        with pytest.raises(RuntimeError, match="died here"):
            await app.sync((str(root),))
        monkeypatch.undo()
        everything = {"location:default/root", _key(0), _key(11), _key(12), _key(13)}
        assert set(app.catalog.index.keys()) == everything
        async with app.engine.connect() as conn:
            assert set(await repo.key_locations(conn)) == everything
    finally:
        await app.close()
    again = await make_app(database_url, resident=True)
    try:
        summary = await again.sync((str(root),))
        assert not summary.errors and summary.removed == 2
        assert set(again.catalog.index.keys()) == {"location:default/root", _key(0), _key(11)}
        await _graph_matches_storage(again)
        async with again.engine.connect() as conn:
            assert set(await repo.key_locations(conn)) == {"location:default/root", _key(0), _key(11)}
            assert set(await repo.location_states(conn)) == {f"file:{root}", f"file:{tmp_path / 'a.yaml'}"}
        quiet = await again.sync((str(root),))
        assert (quiet.added, quiet.updated, quiet.removed, quiet.unchanged) == (0, 0, 0, 3)
    finally:
        await again.close()


# --- 2 and 3. SIGKILL ------------------------------------------------------------------------


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOARD_")}
    env["CALLBOARD_DATA_DIR"] = str(tmp_path / "data")
    return env


async def _sync_killed_when(tmp_path: Path, url: str, catalog: str, watcher: Watcher, sql: str,
                            when: Callable[[tuple[Any, ...]], bool], **params: Any) -> tuple[int | None, Watch]:
    """Run ``callboard sync`` as a real process; SIGKILL it (and its process group) as soon as a
    sample of ``sql`` satisfies ``when``. Returns its exit status (None if it was killed) and the samples."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callboard.bot.cli", "sync", "--database-url", url, "--catalog", catalog,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env(tmp_path),
        start_new_session=True,
    )
    fired = threading.Event()

    def on_sample(row: tuple[Any, ...]) -> None:
        if not fired.is_set() and when(row):
            fired.set()
            os.killpg(proc.pid, signal.SIGKILL)

    with watcher.polling(sql, on_sample=on_sample, **params) as seen:
        out, err = await proc.communicate()
    if fired.is_set():
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, err.decode()[-2000:])
        return None, seen
    _completed(proc.returncode, out, err)
    return 0, seen


async def _sync_to_completion(tmp_path: Path, url: str, catalog: str | None, *, clean: bool = True) -> str:
    """``callboard sync`` to its end (``catalog`` None: a re-sync of the registered roots)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callboard.bot.cli", "sync", "--database-url", url,
        *(("--catalog", catalog) if catalog is not None else ()),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env(tmp_path),
    )
    out, err = await proc.communicate()
    if clean:
        _completed(proc.returncode, out, err)
    assert proc.returncode == 0, err.decode()[-3000:]
    return " ".join(out.decode().split())


async def _sync_in_process(make_app, url: str, catalog: str) -> None:
    """The sync before the one under test (no process start-up to wait for)."""
    app = await make_app(url)
    try:
        summary = await app.sync((catalog,))
    finally:
        await app.close()
    assert not summary.errors and summary.added == N


def _completed(status: int | None, out: bytes, err: bytes) -> None:
    """The sync exited 0 and said "0 error(s)" (the console wraps its line where it likes)."""
    assert status == 0, err.decode()[-3000:]
    assert " 0 error(s)" in " ".join(out.decode().split()), out.decode()[-3000:]


async def test_a_move_killed_at_any_point_leaves_every_entity_answerable(
    tmp_path: Path, make_app, database_url: str, watcher: Watcher
) -> None:
    one = _one_file(tmp_path / "one" / "catalog.yaml")
    split = tmp_path / "split"
    _split(split)
    old = f"file:{one}"
    await _sync_in_process(make_app, database_url, str(one))
    assert watcher.one(COUNT_AND_OLD, old=old) == (N, N)

    def where_now(key: str, loc: str) -> bool:  # the old file, or the part file the new layout puts it in
        i = int(key.rsplit("-", 1)[1])
        return loc in (old, f"file:{split / f'part-{i % FILES:04d}' / 'catalog-info.yaml'}")

    sample = [0, 9, 10, 11, 499, 500, 2500, N - 1]
    for fraction in (0.1, 0.5, 0.9):
        status, seen = await _sync_killed_when(
            tmp_path, database_url, str(split), watcher, COUNT_AND_OLD,
            lambda row: row[1] <= N * (1 - fraction), old=old,  # awaited before the next fraction
        )
        assert status is None, f"the sync finished before {fraction:.0%} of the entities had moved"
        assert min(s[0] for s in seen.samples) >= N, "a reader saw entities missing during the sync"
        _check_all_there(watcher, where_now)
        await _answers(make_app, database_url, sample)
    # a re-sync of the registered roots (not all the new ones are registered yet): the old root
    # is kept as it is, and the summary says why
    out = await _sync_to_completion(tmp_path, database_url, None, clean=False)
    assert f"{one} was being replaced by other catalog roots when a sync stopped" in out, out
    _check_all_there(watcher, where_now)
    out = await _sync_to_completion(tmp_path, database_url, str(split))
    assert watcher.one(COUNT_AND_OLD, old=old) == (N, 0), out
    _check_all_there(watcher, lambda k, loc: loc != old and where_now(k, loc))
    assert watcher.one("SELECT count(*) FROM catalog_errors") == (0,)
    assert watcher.one("SELECT count(*) FROM locations WHERE key = :old", old=old) == (0,)
    await _answers(make_app, database_url, sample)


def _per_file_consistent(watcher: Watcher, split: Path) -> None:
    """Each file's entities are all there or none (cold), all old or all new (update); each
    location that says it is synced holds what it counts."""
    rows = watcher.query("SELECT location_key, count(*), min(data), max(data) FROM entities GROUP BY location_key")
    for loc, count, low, high in rows:
        i = int(loc.rsplit("part-", 1)[1].split("/")[0])
        assert count == len(range(i, N, FILES)), (loc, count)
        assert ("rev-1" in low) == ("rev-1" in high), f"{loc} holds old and new entities"
    states = watcher.query("SELECT key, status, entity_count FROM locations WHERE content_hash IS NOT NULL")
    held = {loc: count for loc, count, _l, _h in rows}
    for key, status, count in states:
        assert status == "ok" and held.get(key, 0) == count, (key, status, count)


@pytest.mark.parametrize("phase", ["cold", "update"])
async def test_kill_9_during_a_sync_leaves_a_database_the_next_sync_completes(
    tmp_path: Path, make_app, database_url: str, watcher: Watcher, phase: str
) -> None:
    """The held case (kill -9 during a plain sync, both databases), kept held."""
    split = tmp_path / "split"
    _split(split)
    if phase == "update":
        await _sync_in_process(make_app, database_url, str(split))
        _split(split, rev=2)
        sql, when = "SELECT count(*) FROM entities WHERE data LIKE '%rev-2%'", lambda row: row[0] >= N * 0.3
    else:
        await (await make_app(database_url)).close()  # the schema, so that the poller can count from the start
        sql, when = "SELECT count(*) FROM entities", lambda row: row[0] >= N * 0.3
    status, _seen = await _sync_killed_when(tmp_path, database_url, str(split), watcher, sql, when)
    assert status is None, "the sync finished before it could be killed"
    _per_file_consistent(watcher, split)
    if phase == "update":
        assert watcher.one("SELECT count(*) FROM entities") == (N,)
        await _answers(make_app, database_url, [0, 10, N - 1])
    await _sync_to_completion(tmp_path, database_url, str(split))
    rows = watcher.query("SELECT count(*), sum(CASE WHEN data LIKE :rev THEN 1 ELSE 0 END) FROM entities",
                         rev=f"%rev-{2 if phase == 'update' else 1}%")
    assert rows == [(N, N)]
    assert watcher.one("SELECT count(*) FROM catalog_errors") == (0,)
    _per_file_consistent(watcher, split)
    await _answers(make_app, database_url, [0, 10, N - 1])
