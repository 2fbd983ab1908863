"""Answers search the docs index from worker threads while a docs sync rewrites it."""

from __future__ import annotations

import threading
from pathlib import Path

from callboard.providers.techdocs.index import DocsIndex, Section


def _sections(generation: int) -> list[Section]:
    return [
        Section(f"page-{i}/", f"Page {i}", f"Failover {i}",
                f"promote the replica of database{i} generation{generation} rollback{generation % 3}")
        for i in range(40)
    ]


def test_searches_in_threads_during_rewrites_see_one_consistent_index(tmp_path: Path) -> None:
    index = DocsIndex(tmp_path / "index")
    index.replace_many([("component:default/db", _sections(0))])
    failures: list[BaseException] = []
    found: list[int] = []
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                # a typo: answered through the vocabulary's corrections, rebuilt after every rewrite
                hits = index.search("replca failovr", limit=3)
                found.append(len(hits))
        except BaseException as exc:  # noqa: BLE001 - any failure in a thread is the test's failure
            failures.append(exc)

    threads = [threading.Thread(target=search) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for generation in range(1, 15):
            index.replace_many([("component:default/db", _sections(generation))])
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert found and all(n == 3 for n in found)
    assert len(index.sections("component:default/db")) == 40
