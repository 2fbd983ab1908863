"""Catalog files are untrusted: what a hostile repository puts in one is refused for that file alone.

Every case goes through the real sync (``Callboard.sync`` over a catalog folder in ``tmp_path``)
and checks three things: the error names the file and says what was wrong; everything else in
that sync was ingested; nothing outside the catalog root was read (a secret written beside the
root never shows up in an entity, an error or a built site).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callboard.bot.app import Callboard
from callboard.catalog import process as process_module
from callboard.catalog.model import CatalogError, ProcessedEntity, SyncSummary
from callboard.catalog.process import MAX_DEPTH
from callboard.providers import files as files_module

from ..catalog.test_bad_input import GOOD, TEAM

SECRET = "OUTSIDE-SECRET-must-never-be-ingested"
#: A sync of these small catalogs takes well under a second; one that hangs fails instead.
SYNC_TIMEOUT = 15.0
DEEP = 900  # deeper than Python's recursion allows for the recursive steps, within libyaml's 1,000


@dataclass(frozen=True, slots=True)
class Synced:
    summary: SyncSummary
    keys: frozenset[str]
    #: every entity's document and every error message, to look for what must not be there
    seen: str

    def error_for(self, file: Path) -> CatalogError:
        found = [e for e in self.summary.errors if Path(e.file) == file]
        assert len(found) == 1, (file, self.summary.errors)
        return found[0]


async def synced(app: Callboard, *paths: Path) -> Synced:
    """Sync ``paths`` and read back everything the catalog now holds; a sync that does not finish
    within ``SYNC_TIMEOUT`` fails the test instead of hanging it."""
    summary = await asyncio.wait_for(app.sync(tuple(str(p) for p in paths)), SYNC_TIMEOUT)
    keys = frozenset(app.catalog.index.keys())
    docs = []
    for key in sorted(keys):
        entity = await app.catalog.get(key)
        assert entity is not None
        docs.append(json.dumps(entity.data))
    messages = [e.message for e in summary.errors]
    return Synced(summary, keys, "\n".join(docs + messages))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def component(name: str, description: str = "fine") -> str:
    return GOOD.format(name=name).replace("metadata:\n", f"metadata:\n  description: {description}\n", 1)


def with_config(name: str, value: str) -> str:
    """A component with ``value`` (placeholders, deep nesting) in a free-form field of its spec."""
    return GOOD.format(name=name) + f"  config:{value}\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the catalog root holding a secret in every shape a catalog could ask for."""
    folder = tmp_path / "outside"
    write(folder / "secret.txt", SECRET)
    write(folder / "secret.json", json.dumps({"token": SECRET}))
    write(folder / "secret.yaml", f"token: {SECRET}\n")
    write(folder / "catalog-info.yaml", component("stolen", SECRET))
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The catalog root, with one good file that every sync must ingest whatever else is there."""
    folder = tmp_path / "catalog"
    write(folder / "org" / "catalog-info.yaml", TEAM)
    return folder


# --- only regular files, never more than max_file_bytes --------------------------------------


def _unblock(fifo: Path) -> None:
    """If a reader is stuck opening the FIFO (the bug this guards against), let it go: open the
    write end and close it, so the stuck reader sees end-of-file and the test can finish."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENXIO: nobody is reading it, as it should be
        return
    os.close(fd)


@contextlib.contextmanager
def fifo_guard(fifo: Path) -> Iterator[None]:
    """A reader stuck on ``fifo`` is let go after ``SYNC_TIMEOUT`` even if it blocks the event loop
    itself (then ``asyncio.wait_for`` cannot fire): a regression fails the test instead of hanging it."""
    watchdog = threading.Timer(SYNC_TIMEOUT, _unblock, (fifo,))
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()
        _unblock(fifo)


async def test_a_fifo_named_catalog_info_is_refused_not_waited_on(root: Path, make_app, database_url: str) -> None:
    fifo = root / "svc" / "catalog-info.yaml"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    write(root / "other" / "catalog-info.yaml", component("other"))
    app = await make_app(database_url)
    try:
        with fifo_guard(fifo):
            result = await synced(app, root)
    finally:
        await app.close()
    err = result.error_for(fifo)
    assert "not a regular file" in err.message and "FIFO" in err.message, err.message
    assert {"group:default/team-a", "component:default/other"} <= result.keys


async def test_a_fifo_swapped_in_after_the_type_check_does_not_hang_the_open(
    root: Path, make_app, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``stat`` says regular file (as it did a moment before someone swapped in a FIFO): the
    non-blocking open and the check on the open descriptor still refuse it."""
    fifo = root / "svc" / "catalog-info.yaml"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    real_stat = os.stat

    def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        result = real_stat(path, *args, **kwargs)
        if not isinstance(path, int) and Path(path) == fifo:
            fields = list(result)
            fields[0] = 0o100644  # a regular file's mode
            return os.stat_result(fields)
        return result

    monkeypatch.setattr(os, "stat", stat)
    app = await make_app(sqlite_url)
    try:
        with fifo_guard(fifo):
            result = await synced(app, root)
    finally:
        await app.close()
    err = result.error_for(fifo)
    assert "not a regular file" in err.message and "FIFO" in err.message, err.message
    assert "group:default/team-a" in result.keys


async def test_a_symlink_to_dev_zero_is_refused_without_reading_it(root: Path, make_app, sqlite_url: str) -> None:
    """A repository cannot hold a device, only a symlink to one: outside the root, so refused
    before anything looks at it (not even a ``stat``: what is there is not the catalog's business)."""
    link = root / "svc" / "catalog-info.yaml"
    link.parent.mkdir(parents=True)
    link.symlink_to("/dev/zero")
    write(root / "other" / "catalog-info.yaml", component("other"))
    # a small limit: should both checks ever go, the bounded read still stops at 1 MB
    app = await make_app(sqlite_url, max_file_bytes=1_000_000)
    try:
        result = await synced(app, root)
    finally:
        await app.close()
    err = result.error_for(link)
    assert "/dev/zero" in err.message and "outside the catalog root" in err.message, err.message
    assert {"group:default/team-a", "component:default/other"} <= result.keys


async def test_a_device_given_as_the_catalog_is_refused_without_reading_it(
    root: Path, make_app, sqlite_url: str
) -> None:
    """The operator's own paths are trusted, but a device among them is still not read."""
    app = await make_app(sqlite_url, max_file_bytes=1_000_000)
    try:
        result = await synced(app, Path("/dev/zero"), root)
    finally:
        await app.close()
    err = result.error_for(Path("/dev/zero"))
    assert "not a regular file" in err.message and "character device" in err.message, err.message
    assert "group:default/team-a" in result.keys


async def test_a_placeholder_that_is_a_fifo_or_a_device_is_refused(root: Path, make_app, sqlite_url: str) -> None:
    fifo = root / "api" / "spec.json"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    (root / "api" / "zero.txt").symlink_to("/dev/zero")
    write(root / "api" / "catalog-info.yaml", "---\n".join([
        with_config("piped", "\n    $json: ./spec.json"),
        with_config("zeroed", "\n    $text: ./zero.txt"),
        component("plain"),
    ]))
    app = await make_app(sqlite_url, max_file_bytes=1_000_000)
    try:
        with fifo_guard(fifo):
            result = await synced(app, root)
    finally:
        await app.close()
    by_entity = {e.entity: e for e in result.summary.errors}
    assert "not a regular file" in by_entity["component:default/piped"].message
    assert "spec.json" in by_entity["component:default/piped"].message
    assert "outside the catalog root" in by_entity["component:default/zeroed"].message
    assert "zero.txt" in by_entity["component:default/zeroed"].message
    assert {"group:default/team-a", "component:default/plain"} <= result.keys


async def test_a_placeholder_file_that_becomes_a_fifo_does_not_hang_the_next_sync(
    root: Path, make_app, sqlite_url: str
) -> None:
    """The files placeholders read are read again at the start of the next sync (to see whether
    they changed): that read too refuses what is not a regular file."""
    spec = write(root / "api" / "spec.txt", "openapi: 3.0.0\n")
    write(root / "api" / "catalog-info.yaml",
          with_config("pets", "\n    $text: ./spec.txt"))
    app = await make_app(sqlite_url)
    try:
        first = await synced(app, root)
        assert not first.summary.errors and "component:default/pets" in first.keys
        spec.unlink()
        os.mkfifo(spec)
        with fifo_guard(spec):
            again = await synced(app, root)
    finally:
        await app.close()
    (err,) = again.summary.errors
    assert err.entity == "component:default/pets" and "not a regular file" in err.message and "spec.txt" in err.message
    assert {"group:default/team-a", "component:default/pets"} <= again.keys  # its last good version stays


@pytest.fixture
def lying_size(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """``stat`` says 10 bytes for the file put in the returned dict, whatever it holds: a file that
    grows while it is read, or a procfs-like file, looks like this to the reader."""
    real_stat, real_fstat = os.stat, os.fstat
    target: dict[str, Path] = {}

    def shrink(result: os.stat_result) -> os.stat_result:
        if "file" not in target or result.st_ino != real_stat(target["file"]).st_ino:
            return result
        fields = list(result)
        fields[6] = 10  # st_size
        return os.stat_result(fields)

    def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        return shrink(real_stat(path, *args, **kwargs))

    def fstat(fd: int) -> os.stat_result:
        return shrink(real_fstat(fd))

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "fstat", fstat)
    yield target


async def test_reading_stops_at_the_limit_whatever_the_size_says(
    root: Path, make_app, sqlite_url: str, lying_size: dict[str, Path]
) -> None:
    limit = 200_000
    big = write(root / "big" / "catalog-info.yaml", "---\n".join(component(f"c{i}") for i in range(2_000)))
    assert big.stat().st_size > limit
    lying_size["file"] = big
    assert os.stat(big).st_size == 10
    write(root / "other" / "catalog-info.yaml", component("other"))
    app = await make_app(sqlite_url, max_file_bytes=limit)
    try:
        result = await synced(app, root)
    finally:
        await app.close()
    err = result.error_for(big)
    assert "200,000" in err.message and "limit" in err.message and "max_file_bytes" in err.message, err.message
    assert {"group:default/team-a", "component:default/other"} <= result.keys
    assert "component:default/c0" not in result.keys


# --- discovered files stay inside the root ----------------------------------------------------


async def test_a_discovered_symlink_leaving_the_root_is_refused(
    root: Path, outside: Path, make_app, database_url: str
) -> None:
    link = root / "svc" / "catalog-info.yaml"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside / "catalog-info.yaml")
    # a symlink that stays inside the root is fine
    write(root / "shared" / "real.yaml", component("shared"))
    (root / "alias").mkdir()
    (root / "alias" / "catalog-info.yaml").symlink_to(root / "shared" / "real.yaml")
    app = await make_app(database_url)
    try:
        result = await synced(app, root)
    finally:
        await app.close()
    err = result.error_for(link)
    assert "outside the catalog root" in err.message, err.message
    assert "component:default/stolen" not in result.keys and SECRET not in result.seen
    assert {"group:default/team-a", "component:default/shared"} <= result.keys


async def test_a_symlinked_folder_leaving_the_root_is_reported_not_scanned(
    root: Path, outside: Path, make_app, sqlite_url: str
) -> None:
    (root / "vendored").symlink_to(outside, target_is_directory=True)
    app = await make_app(sqlite_url)
    try:
        result = await synced(app, root)
    finally:
        await app.close()
    err = result.error_for(root / "vendored" / "catalog-info.yaml")
    assert "outside the catalog root" in err.message, err.message
    assert "component:default/stolen" not in result.keys and SECRET not in result.seen
    assert "group:default/team-a" in result.keys


# --- nesting depth ----------------------------------------------------------------------------


def flow_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def block_mapping(depth: int, indent: int = 0) -> str:
    return "".join(" " * (indent + 2 * i) + "k:\n" for i in range(depth)) + " " * (indent + 2 * depth) + "v\n"


def _deep_catalog(root: Path) -> dict[str, Path]:
    """A file per way to nest deeply, each between good documents; the good files beside them."""
    files = {
        "flow": write(root / "flow" / "catalog-info.yaml",
                      component("before-flow") + "---\n"
                      + with_config("deep-flow", " " + flow_list(DEEP))
                      + "---\n" + component("after-flow")),
        "block": write(root / "block" / "catalog-info.yaml",
                       component("before-block") + "---\n"
                       + with_config("deep-block", "\n" + block_mapping(DEEP, indent=4).rstrip("\n"))
                       + "---\n" + component("after-block")),
        "json": write(root / "json" / "catalog-info.yaml",
                      component("before-json") + "---\n"
                      + with_config("deep-json", "\n    $json: ./deep.json")
                      + "---\n" + component("after-json")),
        "yaml": write(root / "yaml" / "catalog-info.yaml",
                      component("before-yaml") + "---\n"
                      + with_config("deep-yaml", "\n    $yaml: ./deep.yaml")
                      + "---\n" + component("after-yaml")),
    }
    write(root / "json" / "deep.json", "{\"a\":\n" + "[" * DEEP + "]" * DEEP + "}")
    write(root / "yaml" / "deep.yaml", "a:\n" + block_mapping(DEEP, indent=2))
    write(root / "fine" / "catalog-info.yaml", component("fine"))
    return files


def _assert_depth_refused(result: Synced, files: dict[str, Path]) -> None:
    limit = f"deeper than {MAX_DEPTH} levels"
    flow = result.error_for(files["flow"])
    # each deep document starts at line 11; its spec.config at line 19 is at depth 3
    assert limit in flow.message and flow.line == 19, flow
    block = result.error_for(files["block"])
    assert limit in block.message and block.line == 19 + MAX_DEPTH - 1, block
    json_err = result.error_for(files["json"])
    assert limit in json_err.message and "deep.json" in json_err.message and "line 2" in json_err.message, json_err
    assert json_err.entity == "component:default/deep-json" and json_err.line == 11
    yaml_err = result.error_for(files["yaml"])
    assert limit in yaml_err.message and "deep.yaml" in yaml_err.message, yaml_err
    assert f"line {MAX_DEPTH + 1}" in yaml_err.message, yaml_err
    for what in files:
        assert {f"component:default/before-{what}", f"component:default/after-{what}"} <= result.keys
        assert f"component:default/deep-{what}" not in result.keys
    assert {"group:default/team-a", "component:default/fine"} <= result.keys


async def test_deep_nesting_is_refused_for_its_document_only(root: Path, make_app, database_url: str) -> None:
    files = _deep_catalog(root)
    app = await make_app(database_url)
    try:
        result = await synced(app, root)
    finally:
        await app.close()
    _assert_depth_refused(result, files)


async def test_deep_nesting_is_refused_on_the_multi_core_path(
    root: Path, make_app, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Big files are parsed in worker processes, in batches: the same limit holds there."""
    monkeypatch.setattr(files_module, "_PARALLEL_FROM", 1_000)
    monkeypatch.setattr(files_module, "_CHUNK_TARGET", 2_000)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    files = _deep_catalog(root)
    app = await make_app(sqlite_url)
    try:
        result = await synced(app, root)
        assert app._files is not None and app._files._pool is not None  # the workers did parse
    finally:
        await app.close()
    _assert_depth_refused(result, files)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    """The limit refuses what no catalog needs, not what one might: the deepest allowed still loads."""
    doc = with_config("deepest", "\n" + block_mapping(MAX_DEPTH - 2, indent=4).rstrip("\n"))
    (entity,) = process_module.process_text(doc, file="f.yaml", location="file:f.yaml")
    assert not isinstance(entity, CatalogError), entity
    too_deep = with_config("deeper", "\n" + block_mapping(MAX_DEPTH - 1, indent=4).rstrip("\n"))
    (err,) = process_module.process_text(too_deep, file="f.yaml", location="file:f.yaml")
    assert isinstance(err, CatalogError) and f"deeper than {MAX_DEPTH} levels" in err.message


def test_deep_nesting_is_refused_without_libyaml_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyYAML's pure-Python composer recurses while it reads: its RecursionError is the same refusal."""
    import yaml

    monkeypatch.setattr(process_module, "_Loader", yaml.SafeLoader)
    docs = process_module.split_documents(
        component("before") + "---\n" + with_config("deep", " " + flow_list(DEEP)) + "---\n" + component("after"))
    items = process_module.process_documents(docs, file="f.yaml", location="file:f.yaml")
    errors = [i for i in items if isinstance(i, CatalogError)]
    assert len(errors) == 1 and f"deeper than {MAX_DEPTH} levels" in errors[0].message, errors
    assert errors[0].line == 19
    assert sorted(i.ref.name for i in items if isinstance(i, ProcessedEntity)) == ["after", "before"]


@pytest.mark.parametrize("failure", [RecursionError, MemoryError])
async def test_a_document_that_exhausts_the_stack_or_memory_fails_alone(
    root: Path, make_app, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, failure: type[BaseException]
) -> None:
    """Whatever else runs out while one document is processed, it becomes that document's error."""
    real = process_module.emit_relations

    def emit(kind: str, namespace: str, key: str, spec: dict[str, Any]) -> Any:
        if key == "component:default/boom":
            raise failure()
        return real(kind, namespace, key, spec)

    monkeypatch.setattr(process_module, "emit_relations", emit)
    svc = write(root / "svc" / "catalog-info.yaml",
                component("before") + "---\n" + component("boom") + "---\n" + component("after"))
    app = await make_app(sqlite_url)
    try:
        result = await synced(app, root)
    finally:
        await app.close()
    err = result.error_for(svc)
    assert err.line == 11 and failure.__name__ in err.message, err
    assert {"component:default/before", "component:default/after", "group:default/team-a"} <= result.keys
    assert "component:default/boom" not in result.keys


async def test_a_file_whose_read_runs_out_of_memory_fails_alone(
    root: Path, make_app, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = write(root / "big" / "catalog-info.yaml", component("big"))
    inode = big.stat().st_ino
    real_read = os.read

    def read(fd: int, n: int) -> bytes:
        if os.fstat(fd).st_ino == inode:
            raise MemoryError()
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", read)
    app = await make_app(sqlite_url)
    try:
        result = await synced(app, root)
    finally:
        await app.close()
    err = result.error_for(big)
    assert "MemoryError" in err.message and "max_file_bytes" in err.message, err.message
    assert "group:default/team-a" in result.keys and "component:default/big" not in result.keys


# --- what held before: keep it holding --------------------------------------------------------


async def test_an_alias_bomb_is_refused_before_it_expands(root: Path, make_app, sqlite_url: str) -> None:
    lines = ["    a: &a [" + ",".join(['"lol"'] * 9) + "]"]
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"    {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = GOOD.format(name="lol").replace("metadata:\n", "metadata:\n  labels:\n" + "\n".join(lines) + "\n", 1)
    svc = write(root / "svc" / "catalog-info.yaml", component("before") + "---\n" + bomb)
    app = await make_app(sqlite_url)
    try:
        result = await synced(app, root)
    finally:
        await app.close()
    err = result.error_for(svc)
    assert "alias" in err.message and "refused" in err.message and err.line == 11, err
    assert {"component:default/before", "group:default/team-a"} <= result.keys
    assert "component:default/lol" not in result.keys


@pytest.mark.parametrize("how", ["relative", "absolute", "symlink"])
async def test_placeholders_cannot_leave_the_catalog_root(
    root: Path, outside: Path, make_app, sqlite_url: str, how: str
) -> None:
    def target(name: str) -> str:
        if how == "relative":
            return f"../../outside/{name}"
        if how == "absolute":
            return str(outside / name)
        link = root / "api" / f"link-{name}"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(outside / name)
        return f"./link-{name}"

    docs = [
        with_config(f"via-{kind}", f"\n    ${kind}: {target(f'secret.{ext}')}")
        for kind, ext in (("text", "txt"), ("json", "json"), ("yaml", "yaml"))
    ]
    api = write(root / "api" / "catalog-info.yaml", "---\n".join([*docs, component("neighbour")]))
    app = await make_app(sqlite_url)
    try:
        result = await synced(app, root)
    finally:
        await app.close()
    by_entity = {e.entity: e for e in result.summary.errors}
    assert set(by_entity) == {"component:default/via-text", "component:default/via-json", "component:default/via-yaml"}
    for err in by_entity.values():
        assert Path(err.file) == api and "outside the catalog root" in err.message, err
    assert SECRET not in result.seen
    assert {"component:default/neighbour", "group:default/team-a"} <= result.keys


async def test_location_targets_cannot_leave_the_catalog_root(
    root: Path, outside: Path, make_app, database_url: str
) -> None:
    (root / "links").mkdir()
    (root / "links" / "stolen.yaml").symlink_to(outside / "catalog-info.yaml")
    write(root / "mine.yaml", component("mine"))
    targets = ["../outside/catalog-info.yaml", str(outside / "catalog-info.yaml"), "./links/stolen.yaml", "./mine.yaml"]
    location = ("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: everything\nspec:\n  targets:\n"
                + "".join(f"    - {t}\n" for t in targets))
    locations = write(root / "catalog-info.yaml", location)
    app = await make_app(database_url)
    try:
        result = await synced(app, root)
    finally:
        await app.close()
    errors = [e for e in result.summary.errors if Path(e.file) == locations]
    assert len(errors) == 3 and all("outside the catalog root" in e.message for e in errors), errors
    assert {"component:default/mine", "group:default/team-a", "location:default/everything"} <= result.keys
    assert "component:default/stolen" not in result.keys and SECRET not in result.seen


async def test_docs_dir_references_cannot_leave_the_repository(
    root: Path, tmp_path: Path, make_app, sqlite_url: str
) -> None:
    """``backstage.io/techdocs-ref: dir:…`` resolves (symlinks included) inside the repository or is
    refused, and no build starts: nothing outside is read, nothing is built from it."""
    docs_outside = tmp_path / "outside-docs"
    write(docs_outside / "mkdocs.yml", "site_name: stolen\n")
    write(docs_outside / "docs" / "index.md", f"# {SECRET}\n")
    (root / "linked").mkdir()
    (root / "linked" / "docs-link").symlink_to(docs_outside, target_is_directory=True)

    def documented(name: str, ref: str) -> str:
        return GOOD.format(name=name).replace(
            "metadata:\n", f"metadata:\n  annotations:\n    backstage.io/techdocs-ref: {ref}\n", 1)

    write(root / "up" / "catalog-info.yaml", documented("up", "dir:../../.."))
    write(root / "linked" / "catalog-info.yaml", documented("linked", "dir:./docs-link"))
    write(root / "plain" / "catalog-info.yaml", component("plain"))
    app = await make_app(sqlite_url)
    try:
        result = await synced(app, root)
        assert not result.summary.errors
        docs = await asyncio.wait_for(app.sync_docs(), SYNC_TIMEOUT)
    finally:
        await app.close()
    errors = dict(docs.errors)
    for name in ("up", "linked"):
        message = errors[f"component:default/{name}"]
        assert "leaves the repository" in message and "refused" in message and f"{name}/catalog-info.yaml" in message
    assert docs.built == 0 and docs.failed == 2
    assert {"component:default/up", "component:default/linked", "component:default/plain"} <= result.keys
    for path in (tmp_path / "data").rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path
