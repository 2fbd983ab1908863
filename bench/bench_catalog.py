#!/usr/bin/env python3
"""Catalog benchmark: cold sync, no-op re-sync, one-entity re-sync and ``owner`` latency.

Usage (from the project root)::

    python bench/bench_catalog.py --sizes 1000 10000 50000 100000 --db sqlite postgres \
        --out bench/results/catalog.json

Every phase runs in a FRESH subprocess (this same script with ``--phase``), so the
peak RSS reported for a phase belongs to that phase alone:

- ``self_maxrss_mib``: ``getrusage(RUSAGE_SELF).ru_maxrss`` of the phase process;
- ``children_maxrss_mib``: ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` after the parse
  pool and the forkserver were shut down and reaped, i.e. the largest single child
  (a parse worker or the forkserver) -- Linux reports the largest child, not a sum;
- ``sampled_*``: a psutil sampler thread (every ``--sample-interval`` s) as a cross-check,
  including the largest sum over the whole process tree at one instant.

Catalogs come from ``/work/shared/bench/gen_catalog.py`` (seed 42). Existing files in
``--catalog-dir`` (default ``/tmp/cat``) are reused; missing ones are generated there.
Each (size, database) run syncs its own copy under ``bench/work/`` (git-ignored),
because the one-entity re-sync edits the synced file in place.

Results are written after every phase (atomically), so an interrupted run keeps what
it measured. Only the standard library is imported at module level: the parse
workers are started by ``forkserver``, which imports this module as ``__mp_main__``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_T0 = time.perf_counter()

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_GEN = Path("/work/shared/bench/gen_catalog.py")
DEFAULT_CATALOG_DIR = Path("/tmp/cat")
DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PHASES = ("cold", "noop", "changed", "owner", "owner_resident")
EDIT_SUFFIX = " (edited by bench_catalog)"


# ---------------------------------------------------------------------------------------
# helpers shared by both sides
# ---------------------------------------------------------------------------------------


def _mib(kib: int) -> float:
    return round(kib / 1024.0, 1)


def _pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (same method as the Backstage baseline)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(1, int(-(-p * len(s) // 100)))  # ceil(p/100*n), at least 1
    return s[min(k, len(s)) - 1]


def _lat_stats(seconds: list[float]) -> dict[str, float]:
    ms = [x * 1000.0 for x in seconds]
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50_ms": round(_pct(ms, 50), 4),
        "p90_ms": round(_pct(ms, 90), 4),
        "p99_ms": round(_pct(ms, 99), 4),
        "max_ms": round(max(ms), 4),
        "mean_ms": round(sum(ms) / len(ms), 4),
    }


def make_typo(name: str, rng: Any) -> tuple[str, str]:
    """A deterministic typo in the first word of ``name`` (never in the digits).

    Either deletes one interior letter of the first ``-``-separated word or swaps two
    adjacent (different) letters of it. Returns (typo, description of the edit).
    """
    first, sep, rest = name.partition("-")
    for _ in range(100):
        if rng.random() < 0.5 and len(first) >= 3:
            i = rng.randrange(1, len(first) - 1)
            typo = first[:i] + first[i + 1 :]
            what = f"delete {first[i]!r}@{i}"
        else:
            i = rng.randrange(0, len(first) - 1)
            if first[i] == first[i + 1]:
                continue
            typo = first[:i] + first[i + 1] + first[i] + first[i + 2 :]
            what = f"swap @{i}"
        if typo != first:
            return typo + sep + rest, what
    return name, "none"


# ---------------------------------------------------------------------------------------
# phase side (runs in a fresh subprocess)
# ---------------------------------------------------------------------------------------


def _vmhwm_kib(pid: int | str) -> int:
    """Peak RSS (VmHWM) of a live process since its last exec, in KiB; 0 if unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class _Sampler:
    """Samples memory of this process and its descendants, in a thread.

    For every descendant it keeps the largest ``VmHWM`` seen (the kernel's own peak RSS
    of that process, so short peaks between samples are not lost as long as the process
    is sampled once before it exits); ``sample()`` is also called right before the app
    closes the parse pool. It also records the largest instantaneous RSS sum of the tree.
    """

    def __init__(self, interval: float) -> None:
        import threading

        self.interval = interval
        self.self_peak = 0
        self.tree_peak = 0
        self.hwm: dict[int, tuple[int, str]] = {}  # pid -> (VmHWM KiB, role)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        try:
            import psutil

            self._proc = psutil.Process()
            self._psutil = psutil
        except ImportError:  # pragma: no cover - psutil is in the bench extra
            self._proc = None

    def start(self) -> _Sampler:
        if self._proc is not None and self.interval > 0:
            self._thread.start()
        return self

    def sample(self) -> None:
        if self._proc is None or self.interval <= 0:
            return
        psutil = self._psutil
        try:
            own = self._proc.memory_info().rss
            total = own
            me = self._proc.pid
            for k in self._proc.children(recursive=True):
                try:
                    rss = k.memory_info().rss
                    ppid = k.ppid()
                    cmd = " ".join(k.cmdline())
                except psutil.Error:
                    continue
                total += rss
                if "resource_tracker" in cmd:
                    role = "resource_tracker"
                elif ppid == me and "forkserver" in cmd:
                    role = "forkserver"
                elif "forkserver" in cmd:
                    role = "parse_worker"
                else:
                    role = "other"
                hwm = max(_vmhwm_kib(k.pid), rss // 1024)
                prev = self.hwm.get(k.pid, (0, role))[0]
                self.hwm[k.pid] = (max(prev, hwm), role)
            self.self_peak = max(self.self_peak, own)
            self.tree_peak = max(self.tree_peak, total)
        except psutil.Error:
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self) -> dict[str, Any]:
        if self._proc is None or self.interval <= 0:
            return {}
        self._stop.set()
        self._thread.join()
        m = 1024 * 1024
        by_role: dict[str, float] = {}
        count: dict[str, int] = {}
        for hwm, role in self.hwm.values():
            by_role[role] = max(by_role.get(role, 0.0), _mib(hwm))
            count[role] = count.get(role, 0) + 1
        return {
            "largest_child_vmhwm_mib": max(by_role.values(), default=0.0),
            "largest_worker_vmhwm_mib": by_role.get("parse_worker", 0.0),
            "child_vmhwm_by_role_mib": by_role,
            "children_seen": count,
            "sampled_self_peak_mib": round(self.self_peak / m, 1),
            "sampled_tree_peak_mib": round(self.tree_peak / m, 1),
            "sample_interval_s": self.interval,
        }


def _rss_now_mib() -> float | None:
    try:
        import psutil

        return round(psutil.Process().memory_info().rss / (1024 * 1024), 1)
    except Exception:  # pragma: no cover
        return None


def _summary_dict(summary: Any) -> dict[str, Any]:
    return {
        "added": summary.added,
        "updated": summary.updated,
        "removed": summary.removed,
        "unchanged": summary.unchanged,
        "locations": summary.locations,
        "errors": len(summary.errors),
        "error_samples": [
            {"file": e.file, "line": e.line, "entity": e.entity, "name": e.name, "message": e.message}
            for e in list(summary.errors)[:10]
        ],
    }


def _stop_forkserver() -> bool:
    """Stop the forkserver (after the pool is shut down) so its children count in RUSAGE_CHILDREN."""
    try:
        from multiprocessing import forkserver

        fs = forkserver._forkserver  # type: ignore[attr-defined]
        if getattr(fs, "_forkserver_pid", None) is None:
            return False
        fs._stop()
        return True
    except Exception:
        return False


async def _run_phase(args: argparse.Namespace, out: dict[str, Any]) -> None:
    t_imp = time.perf_counter()
    from callboard.bot.app import Callboard
    from callboard.bot.config import load_settings
    from callboard.catalog.service import Catalog

    out["import_s"] = round(time.perf_counter() - t_imp, 4)
    sidecar = json.loads(Path(args.sidecar).read_text())
    n = int(sidecar["total"])
    catalog = str(Path(args.catalog).resolve())

    # Time the index load inside Callboard.open without changing product code.
    timing: dict[str, Any] = {}
    orig_load = Catalog.load_index

    async def timed_load(self: Catalog, *a: Any, **kw: Any) -> int:
        rss0 = _rss_now_mib()
        t = time.perf_counter()
        count = await orig_load(self, *a, **kw)
        timing["index_load_s"] = round(time.perf_counter() - t, 4)
        timing["index_entries"] = count
        rss1 = _rss_now_mib()
        if rss0 is not None and rss1 is not None:
            timing["rss_before_index_mib"] = rss0
            timing["rss_after_index_mib"] = rss1
            timing["index_rss_growth_mib"] = round(rss1 - rss0, 1)
        return count

    Catalog.load_index = timed_load  # type: ignore[method-assign]

    settings = load_settings(database_url=args.db_url, catalog=(catalog,), env={})
    latency = args.phase.startswith("owner")
    open_kw: dict[str, Any] = {}
    if args.phase == "owner_resident":
        import inspect

        if "resident" not in inspect.signature(Callboard.open).parameters:
            out["skipped"] = "Callboard.open has no resident= option in this version"
            return
        open_kw["resident"] = True
    if args.phase in ("cold", "noop", "changed"):
        # what `callboard sync` does: a sync-only process loads no search index
        open_kw["answering"] = False
    out["open_kwargs"] = open_kw
    sampler = _Sampler(0 if latency else args.sample_interval).start()
    t_open = time.perf_counter()
    app = await Callboard.open(settings, **open_kw)
    out["open_s"] = round(time.perf_counter() - t_open, 4)
    out.update(timing)
    try:
        if args.phase in ("cold", "noop", "changed"):
            t = time.perf_counter()
            summary = await app.sync((catalog,))
            sync_s = time.perf_counter() - t
            out["sync_s"] = round(sync_s, 4)
            out["summary"] = _summary_dict(summary)
            out["entities"] = n
            out["entities_per_s"] = round(n / sync_s, 1) if sync_s > 0 else None
            out["index_size_after"] = len(app.catalog.index)
            checks: dict[str, bool] = {"no_errors": not summary.errors}
            if args.phase == "cold":
                checks["added_all"] = summary.added == n
            elif args.phase == "noop":
                checks["all_unchanged"] = summary.unchanged == n and summary.added == summary.updated == 0
            else:
                checks["updated_1"] = summary.updated == 1
                checks["added_0_removed_0"] = summary.added == 0 and summary.removed == 0
                key = f"component:default/{sidecar['resync_component']}"
                ent = await app.catalog.get(key)
                desc = (ent.metadata.get("description") if ent else None) or ""
                checks["new_description_served"] = desc.endswith(EDIT_SUFFIX)
            out["checks"] = checks
        else:
            await _owner_latency(app, sidecar, args, out)
    finally:
        sampler.sample()  # the workers' final VmHWM, before close() joins the pool
        t = time.perf_counter()
        await app.close()
        out["close_s"] = round(time.perf_counter() - t, 4)
        out.update(sampler.stop())
        out["forkserver_stopped"] = _stop_forkserver()
    out["phase_inprocess_s"] = round(time.perf_counter() - _T0, 4)


async def _owner_latency(app: Any, sidecar: dict[str, Any], args: argparse.Namespace, out: dict[str, Any]) -> None:
    import gc
    import random

    catalog = str(Path(args.catalog).resolve())
    t = time.perf_counter()
    summary = await app.sync((catalog,))
    out["presync_s"] = round(time.perf_counter() - t, 4)
    out["presync_summary"] = _summary_dict(summary)
    names: list[str] = list(sidecar["components"])
    rng = random.Random(7)
    typos = [make_typo(nm, rng) for nm in names]
    gc.collect()

    async def ask(q: str) -> tuple[float, Any]:
        t0 = time.perf_counter()
        reply = await app.ask(f"owner {q}")
        return time.perf_counter() - t0, reply

    for nm in names[:20]:  # warm-up
        await ask(nm)

    exact_t: list[float] = []
    exact_ok = 0
    exact_bad: list[dict[str, Any]] = []
    for nm in names:
        dt, reply = await ask(nm)
        exact_t.append(dt)
        want = f"component:default/{nm}"
        if reply.status.value == "ok" and (reply.data or {}).get("entity") == want:
            exact_ok += 1
        elif len(exact_bad) < 10:
            exact_bad.append({"query": nm, "status": reply.status.value, "summary": reply.summary})

    typo_t: list[float] = []
    typo_ok = 0
    statuses: dict[str, int] = {}
    wrong: list[dict[str, Any]] = []
    unanswered: list[dict[str, Any]] = []
    for (typo, what), nm in zip(typos, names):
        dt, reply = await ask(typo)
        typo_t.append(dt)
        status = reply.status.value
        statuses[status] = statuses.get(status, 0) + 1
        want = f"component:default/{nm}"
        got = (reply.data or {}).get("entity")
        if status == "ok" and got == want:
            typo_ok += 1
        elif status == "ok":
            wrong.append({"query": typo, "edit": what, "want": want, "got": got})
        elif len(unanswered) < 15:
            unanswered.append({"query": typo, "edit": what, "want": want, "status": status, "summary": reply.summary})

    search_exact_t: list[float] = []
    for nm in names:
        t0 = time.perf_counter()
        app.catalog.search(nm)
        search_exact_t.append(time.perf_counter() - t0)
    search_typo_t: list[float] = []
    search_typo_match = 0
    for (typo, _), nm in zip(typos, names):
        t0 = time.perf_counter()
        res = app.catalog.search(typo)
        search_typo_t.append(time.perf_counter() - t0)
        m = res.match
        if m is not None and m.key == f"component:default/{nm}":
            search_typo_match += 1

    get_t: list[float] = []
    for nm in names:  # the DB read alone: one entity with its stitched relations
        t0 = time.perf_counter()
        await app.catalog.get(f"component:default/{nm}")
        get_t.append(time.perf_counter() - t0)

    out["owner_exact"] = {**_lat_stats(exact_t), "correct": exact_ok, "of": len(names), "failures": exact_bad}
    out["owner_typo"] = {
        **_lat_stats(typo_t),
        "correct": typo_ok,
        "of": len(names),
        "accuracy": round(typo_ok / len(names), 4),
        "statuses": statuses,
        "wrong_entity": wrong,
        "not_answered_samples": unanswered,
    }
    out["catalog_get"] = _lat_stats(get_t)
    out["search_exact"] = _lat_stats(search_exact_t)
    out["search_typo"] = {**_lat_stats(search_typo_t), "confident_correct": search_typo_match}
    out["typo_samples"] = [{"name": nm, "typo": t, "edit": w} for (t, w), nm in list(zip(typos, names))[:10]]


def phase_main(args: argparse.Namespace) -> int:
    import asyncio
    import traceback

    out: dict[str, Any] = {"phase": args.phase, "ok": False}
    rc = 0
    try:
        asyncio.run(_run_phase(args, out))
        out["ok"] = True
    except BaseException as exc:  # report everything, including KeyboardInterrupt
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc()
        _stop_forkserver()
        rc = 1
    ru_self = resource.getrusage(resource.RUSAGE_SELF)
    ru_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["self_maxrss_mib"] = _mib(ru_self.ru_maxrss)
    out["children_maxrss_mib"] = _mib(ru_kids.ru_maxrss)
    out["self_cpu_s"] = round(ru_self.ru_utime + ru_self.ru_stime, 3)
    out["children_cpu_s"] = round(ru_kids.ru_utime + ru_kids.ru_stime, 3)
    Path(args.result_file).write_text(json.dumps(out, indent=1))
    return rc


# ---------------------------------------------------------------------------------------
# orchestrator side
# ---------------------------------------------------------------------------------------


def _sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return ""


def machine_info(pg_admin: str | None) -> dict[str, Any]:
    import sqlite3

    model = ""
    for line in _sh(["lscpu"]).splitlines():
        if line.startswith("Model name"):
            model = line.split(":", 1)[1].strip()
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    info: dict[str, Any] = {
        "nproc": _sh(["nproc"]),
        "cpu_model": model,
        "memory": mem,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        import importlib.metadata as md

        info["packages"] = {
            p: md.version(p) for p in ("callboard", "sqlalchemy", "aiosqlite", "asyncpg", "PyYAML", "rapidfuzz", "numpy")
        }
        import yaml

        info["libyaml"] = bool(getattr(yaml, "__with_libyaml__", False))
    except Exception:
        pass
    if pg_admin:
        info["postgresql"] = _pg_query(pg_admin, "SHOW server_version")
    return info


def _pg_query(admin_url: str, sql: str, *, database: str | None = None) -> Any:
    import asyncio

    import asyncpg

    url = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    if database:
        url = url.rsplit("/", 1)[0] + "/" + database

    async def go() -> Any:
        conn = await asyncpg.connect(url)
        try:
            if sql.lstrip().upper().startswith(("SELECT", "SHOW")):
                return await conn.fetchval(sql)
            await conn.execute(sql)
            return None
        finally:
            await conn.close()

    return asyncio.run(go())


_SOURCE_DIRS = ("callboard", "bot", "catalog", "commands", "providers", "storage")


def code_fingerprint() -> dict[str, Any]:
    """sha1 over the product's Python sources (others may edit them while a run is going)."""
    import hashlib

    h = hashlib.sha1()
    newest = 0.0
    files = 0
    for d in _SOURCE_DIRS:
        for f in sorted((ROOT / d).rglob("*.py")):
            if "__pycache__" in f.parts:
                continue
            h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
            newest = max(newest, f.stat().st_mtime)
            files += 1
    return {
        "sha1": h.hexdigest()[:12],
        "files": files,
        "newest_mtime": _dt.datetime.fromtimestamp(newest, _dt.timezone.utc).isoformat(timespec="seconds"),
    }


def ensure_catalog(n: int, catalog_dir: Path, gen: Path) -> tuple[Path, Path]:
    path = catalog_dir / f"catalog-{n}.yaml"
    sidecar = Path(str(path) + ".json")
    if not (path.exists() and sidecar.exists()):
        catalog_dir.mkdir(parents=True, exist_ok=True)
        print(f"  generating {path}", flush=True)
        subprocess.run([sys.executable, str(gen), "-n", str(n), "-o", str(path), "--seed", "42"], check=True)
    return path, sidecar


def edit_catalog(path: Path, component: str) -> str:
    """Change the description of ``component`` in ``path`` (in place); return the new text."""
    data = path.read_bytes()
    marker = f"\n  name: {component}\n  description: ".encode()
    at = data.find(marker)
    if at < 0 or data.find(marker, at + 1) >= 0:
        raise RuntimeError(f"{component}: expected exactly one 'name:'+'description:' block in {path}")
    start = at + len(marker)
    end = data.index(b"\n", start)
    old = data[start:end].decode()
    if old.startswith('"') and old.endswith('"'):
        new = old[:-1] + EDIT_SUFFIX + '"'
    else:
        new = old + EDIT_SUFFIX
    path.write_bytes(data[:start] + new.encode() + data[end:])
    return new


def write_results(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, out)


def _cpu_times() -> tuple[float, float]:
    """(busy, iowait) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / tick, iowait / tick


def run_phase(phase: str, db_url: str, catalog: Path, sidecar: Path, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    result_file = workdir / f"{phase}.result.json"
    log_file = workdir / f"{phase}.log"
    result_file.unlink(missing_ok=True)
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--db-url", db_url,
        "--catalog", str(catalog), "--sidecar", str(sidecar), "--result-file", str(result_file),
        "--sample-interval", str(args.sample_interval),
    ]
    load_before = os.getloadavg()[0]
    busy0, iow0 = _cpu_times()
    t = time.perf_counter()
    with log_file.open("w") as log:
        try:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=args.phase_timeout, cwd=ROOT)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    wall = time.perf_counter() - t
    busy1, iow1 = _cpu_times()
    try:
        res = json.loads(result_file.read_text())
    except (OSError, ValueError):
        res = {"phase": phase, "ok": False, "error": "no result file"}
    res["process_wall_s"] = round(wall, 4)
    # Interference check: all CPU the machine spent during the phase vs this phase's own
    # processes (for PostgreSQL runs the difference includes the server's work for us).
    res["machine_busy_cpu_s"] = round(busy1 - busy0, 2)
    res["machine_iowait_s"] = round(iow1 - iow0, 2)
    own = (res.get("self_cpu_s") or 0) + (res.get("children_cpu_s") or 0)
    res["other_cpu_s"] = round(busy1 - busy0 - own, 2)
    res["loadavg_1m_before"] = round(load_before, 2)
    res["returncode"] = rc
    if rc != 0 or not res.get("ok"):
        res["log_tail"] = log_file.read_text(errors="replace")[-4000:]
    return res


def db_size(db: str, db_url: str, sqlite_path: Path | None, args: argparse.Namespace, pg_name: str | None) -> int | None:
    try:
        if db == "sqlite" and sqlite_path is not None:
            return sum(p.stat().st_size for p in sqlite_path.parent.glob(sqlite_path.name + "*"))
        if db == "postgres" and pg_name:
            return int(_pg_query(args.pg_admin, f"SELECT pg_database_size('{pg_name}')"))
    except Exception:
        return None
    return None


def orchestrate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    workroot = Path(args.workdir)
    workroot.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now(_dt.timezone.utc)
    results: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_info(args.pg_admin if "postgres" in args.db else None),
        "code_at_start": code_fingerprint(),
        "runs": [],
    }
    write_results(results, out)
    for n in sorted(args.sizes):
        src, sidecar = ensure_catalog(n, Path(args.catalog_dir), Path(args.gen))
        meta = json.loads(sidecar.read_text())
        for db in args.db:
            run: dict[str, Any] = {
                "size": n, "db": db, "entities": meta["total"], "catalog_bytes": src.stat().st_size,
                "resync_component": meta["resync_component"], "phases": {},
            }
            results["runs"].append(run)
            wd = workroot / f"{db}-{n}"
            shutil.rmtree(wd, ignore_errors=True)
            wd.mkdir(parents=True)
            catalog = wd / "catalog.yaml"
            shutil.copyfile(src, catalog)
            sqlite_path: Path | None = None
            pg_name: str | None = None
            if db == "sqlite":
                sqlite_path = (wd / "callboard.db").resolve()
                db_url = f"sqlite:///{sqlite_path}"
            else:
                pg_name = f"{args.pg_prefix}_{n}"
                _pg_query(args.pg_admin, f'DROP DATABASE IF EXISTS "{pg_name}"')
                _pg_query(args.pg_admin, f'CREATE DATABASE "{pg_name}"')
                db_url = args.pg_admin.rsplit("/", 1)[0] + "/" + pg_name
            run["db_url"] = db_url
            print(f"== {db} n={n}", flush=True)
            for phase in args.phases:
                if phase == "changed":
                    run["edited_description"] = edit_catalog(catalog, meta["resync_component"])
                res = run_phase(phase, db_url, catalog, sidecar, wd, args)
                run["phases"][phase] = res
                line = f"   {phase:8s} ok={res.get('ok')} wall={res['process_wall_s']:.2f}s"
                if "sync_s" in res:
                    line += f" sync={res['sync_s']:.3f}s summary={ {k: v for k, v in res['summary'].items() if k != 'error_samples'} }"
                if "owner_exact" in res:
                    line += (f" exact p50/p99={res['owner_exact']['p50_ms']:.2f}/{res['owner_exact']['p99_ms']:.2f}ms"
                             f" typo p50/p99={res['owner_typo']['p50_ms']:.2f}/{res['owner_typo']['p99_ms']:.2f}ms"
                             f" typo acc={res['owner_typo']['correct']}/{res['owner_typo']['of']}")
                line += (f" rss self={res.get('self_maxrss_mib')} worker={res.get('largest_worker_vmhwm_mib')}"
                         f" tree={res.get('sampled_tree_peak_mib')} MiB")
                print(line, flush=True)
                if not res.get("ok"):
                    print(res.get("traceback") or res.get("log_tail", ""), flush=True)
                write_results(results, out)
                if not res.get("ok") and phase == "cold":
                    break
            run["code"] = code_fingerprint()
            run["db_size_bytes"] = db_size(db, db_url, sqlite_path, args, pg_name)
            if db == "postgres" and pg_name and not args.keep:
                try:
                    _pg_query(args.pg_admin, f'DROP DATABASE IF EXISTS "{pg_name}"')
                except Exception as exc:  # pragma: no cover
                    run["drop_error"] = str(exc)
            if not args.keep:
                shutil.rmtree(wd, ignore_errors=True)
            write_results(results, out)
    results["code_at_end"] = code_fingerprint()
    if results["code_at_end"]["sha1"] != results["code_at_start"]["sha1"]:
        print("WARNING: the product sources changed during the run (see code_at_start/code_at_end)")
    results["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    results["total_s"] = round(time.perf_counter() - _T0, 1)
    write_results(results, out)
    print(f"wrote {out} ({results['total_s']} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--db", nargs="+", choices=("sqlite", "postgres"), default=["sqlite"])
    ap.add_argument("--out", default=str(HERE / "results" / "catalog.json"))
    ap.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    ap.add_argument("--catalog-dir", default=str(DEFAULT_CATALOG_DIR), help="where catalog-N.yaml(+.json) live")
    ap.add_argument("--gen", default=str(DEFAULT_GEN), help="gen_catalog.py, for missing catalogs")
    ap.add_argument("--workdir", default=str(HERE / "work"))
    ap.add_argument("--pg-admin", default=DEFAULT_PG_ADMIN, help="maintenance DB URL used for CREATE/DROP DATABASE")
    ap.add_argument("--pg-prefix", default="cb_bench", help="benchmark databases are <prefix>_<N>")
    ap.add_argument("--keep", action="store_true", help="keep work dirs and PostgreSQL databases")
    ap.add_argument("--phase-timeout", type=float, default=1200.0)
    ap.add_argument("--sample-interval", type=float, default=0.1, help="psutil RSS sampling period (0 = off)")
    # internal: one phase in this process
    ap.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    ap.add_argument("--db-url", help=argparse.SUPPRESS)
    ap.add_argument("--catalog", help=argparse.SUPPRESS)
    ap.add_argument("--sidecar", help=argparse.SUPPRESS)
    ap.add_argument("--result-file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.phase:
        return phase_main(args)
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
