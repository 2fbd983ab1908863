"""TechDocs benchmark: build throughput, a no-change pass, one changed site, index size and
``docs`` query latency, on the corpus of ``bench/gen_docs.py`` (5,000 sites, 50,000 sections).

    python bench/gen_docs.py --sites 5000 --sections 10 --out /tmp/docs-5000 --seed 42
    python bench/bench_docs.py --corpus /tmp/docs-5000 --out bench/results/docs.json

Each phase runs in a fresh process (this script with ``--phase``) against one SQLite database
and one docs store under ``--workdir``:

- ``build``: sync the catalog, then ``sync_docs()`` from nothing (every site built by the MkDocs
  workers, every section indexed). Timed: the ``sync_docs`` call.
- ``noop``: a new process opens the app and runs ``sync_docs()`` again (every site's sources
  hashed, nothing built). Timed: the call, and the whole process.
- ``changed``: ``gen_docs.py --only 42 --rev N`` rewrites one page of one site, then
  ``sync_docs()`` in a new process: one build, that site's sections replaced in the index.
  Checks that a word only the new page has is found, in that site.
- ``query``: 20 warm-up queries, then the 1,000 queries of ``queries.json`` through
  ``app.docs.search`` (index only) and through ``app.ask("docs …")`` (the whole command:
  dispatch, search, snippets, reply). p50 / p99 / max, and top-1 / top-3 against the section
  each query was drawn from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _du(path: Path) -> int:
    """Bytes on disk, counting each hard-linked file once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for p in path.rglob("*"):
        try:
            st = p.lstat()
        except OSError:
            continue
        if not p.is_file() or (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        total += st.st_blocks * 512
    return total


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def _stats(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(statistics.median(values), 3), "p99_ms": round(_pct(values, 99), 3),
            "max_ms": round(max(values), 3), "mean_ms": round(statistics.fmean(values), 3)}


async def _open(work: Path) -> Any:
    from callboard.bot.app import Callboard
    from callboard.bot.config import Settings

    settings = Settings(database_url=f"sqlite:///{work / 'cb.db'}", data_dir=str(work / "data"))
    return await Callboard.open(settings)


async def _phase(name: str, corpus: Path, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"phase": name}
    started = time.perf_counter()
    app = await _open(work)
    out["open_s"] = round(time.perf_counter() - started, 3)
    try:
        if name == "build":
            t = time.perf_counter()
            summary = await app.sync((str(corpus / "catalog-info.yaml"),))
            out["catalog_sync_s"] = round(time.perf_counter() - t, 3)
            out["entities"] = summary.added
        else:
            await app.sync((str(corpus / "catalog-info.yaml"),))
        if name in ("build", "noop", "changed"):
            t = time.perf_counter()
            docs = await app.sync_docs()
            out["sync_docs_s"] = round(time.perf_counter() - t, 3)
            out["docs"] = {"built": docs.built, "unchanged": docs.unchanged, "failed": docs.failed,
                           "removed": docs.removed, "errors": docs.errors[:5]}
            if docs.built:
                out["sites_per_s"] = round(docs.built / out["sync_docs_s"], 2)
            out["index_entries"] = app.docs.index.count()
            store = Path(app.settings.effective_docs_store)
            out["index_bytes"] = _du(store / "index")
            out["sites_bytes"] = _du(store / "sites")
            out["shared_assets_bytes"] = _du(store / "assets")
        if name == "changed":
            marker = json.loads((work / "changed.json").read_text())
            # the rarest word of the rewritten page: it must now be found, in that site
            searcher = app.docs.index.index.searcher()
            words = set(re.findall(r"[a-z]{6,}", Path(marker["page"]).read_text().lower()))
            marker["word"] = min(sorted(words), key=lambda w: searcher.doc_freq("words", w))
            hits = await app.docs.search(marker["word"], entity=marker["entity"], limit=3)
            page = Path(marker["page"]).stem
            out["changed_word"] = marker["word"]
            out["changed_found_at"] = [f"{h.entity} {h.location}" for h in hits]
            out["changed_ok"] = bool(hits) and hits[0].location.startswith("" if page == "index" else f"{page}/")
        if name == "query":
            queries = json.loads((corpus / "queries.json").read_text())
            for q in queries[:20]:
                await app.docs.search(q["q"], limit=5)
            index_ms: list[float] = []
            command_ms: list[float] = []
            top1 = top3 = 0
            by_kind: dict[str, list[int]] = {}
            for q in queries:
                t = time.perf_counter()
                hits = await app.docs.search(q["q"], limit=5)
                index_ms.append((time.perf_counter() - t) * 1000)
                found = [(h.entity, h.location) for h in hits[:3]]
                want = (q["entity"], q["location"])
                rank1 = bool(found) and found[0] == want
                top1 += rank1
                top3 += want in found
                by_kind.setdefault(q.get("kind", "?"), [0, 0])
                by_kind[q.get("kind", "?")][0] += rank1
                by_kind[q.get("kind", "?")][1] += 1
            for q in queries:
                t = time.perf_counter()
                await app.ask("docs " + q["q"])
                command_ms.append((time.perf_counter() - t) * 1000)
            out["search"] = _stats(index_ms)
            out["command"] = _stats(command_ms)
            out["top1"] = round(top1 / len(queries), 4)
            out["top3"] = round(top3 / len(queries), 4)
            out["top1_by_kind"] = {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_kind.items())}
    finally:
        await app.close()
    out["process_s"] = round(time.perf_counter() - started, 3)
    out["maxrss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["children_maxrss_mib"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    return out


def _changed_word(corpus: Path, site: int, rev: int) -> dict[str, str]:
    printed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gen_docs.py"), "--sites", str(_site_count(corpus)), "--out", str(corpus),
         "--only", str(site), "--rev", str(rev)],
        check=True, capture_output=True, text=True,
    ).stdout
    page = Path(re.findall(r"^changed: (\S+\.md)$", printed, re.MULTILINE)[0])
    site_dir = next(p for p in page.parents if p.parent.name == "sites")
    return {"entity": f"component:default/{site_dir.name}", "page": str(page)}


def _site_count(corpus: Path) -> int:
    return sum(1 for _ in (corpus / "sites").iterdir())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, type=Path)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "work" / "docs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "docs.json")
    parser.add_argument("--phases", nargs="+", default=["build", "noop", "changed", "query"])
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(asyncio.run(_phase(args.phase, args.corpus, args.workdir))))
        return 0
    if "build" in args.phases and args.workdir.exists():
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "corpus": str(args.corpus), "sites": _site_count(args.corpus),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "phases": {},
    }
    for phase in args.phases:
        if phase == "changed":
            site = min(42, result["sites"] - 1)
            (args.workdir / "changed.json").write_text(json.dumps(_changed_word(args.corpus, site, int(time.time()) % 1000 + 1)))
        proc = subprocess.run([sys.executable, __file__, "--corpus", str(args.corpus), "--workdir", str(args.workdir),
                               "--phase", phase], capture_output=True, text=True)
        if proc.returncode != 0:
            result["phases"][phase] = {"ok": False, "stderr": proc.stderr[-4000:]}
            print(f"{phase}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            break
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        result["phases"][phase] = data
        print(phase, json.dumps({k: v for k, v in data.items() if k not in ("docs",)}), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if "changed" in args.phases:  # leave the corpus as generated
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_docs.py"), "--sites", str(result["sites"]),
                        "--out", str(args.corpus), "--only", str(min(42, result["sites"] - 1)), "--rev", "0"],
                       check=True, capture_output=True)
    if not args.keep and "query" in args.phases:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
