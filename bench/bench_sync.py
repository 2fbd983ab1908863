#!/usr/bin/env python3
"""End-to-end sync benchmark: ``callboard sync`` as a user runs it, and its parts.

Usage (from the project root)::

    python bench/bench_sync.py --sizes 50000 100000 --db sqlite postgres --runs 5 \
        --out bench/results/sync.json

Each run starts the installed ``callboard`` command in a subprocess::

    callboard sync --catalog <copy of catalog-N.yaml> --database-url <URL>

with ``CALLBOARD_DATA_DIR`` set to the run's work folder (so the TechDocs store is its own),
and measures, from process start to exit: the wall time, the CPU time of the whole process
tree (the command, its parse workers, the fork server), and peak memory (each process's own
peak, ``VmHWM``, and the largest sum over the tree at one instant), by sampling the tree
with psutil every ``--sample-interval`` seconds. It checks the printed summary (all added
when cold, all unchanged on a no-op, no errors).

- ``cold``: a new database (SQLite file deleted; PostgreSQL database dropped and created)
  and a new data folder, then the command. Repeated ``--runs`` times.
- ``noop``: the same command again on the synced database, ``--runs`` times.

``--parts`` adds one run of each in a fresh process of this script (``--parts-phase``) that
does what the command does, in-process, timing its parts from the outside (the product code
is wrapped, not changed): importing the CLI, opening the database, the catalog sync (reading
the file, splitting and fingerprinting it, waiting for the parse workers, planning,
writing, building the secondary indexes, the removals at the end), the TechDocs pass (the
query for entities with docs, locating and hashing their sources) and closing.

``--variant LABEL=PATH`` (repeatable) compares installs, e.g. the code before and after a
change, each from its own venv: the variants take turns run by run, each with its own database
and folder, so they see the same machine load.

The load of the machine is recorded with every run (1-minute load average before it, and
the CPU the whole machine spent during it next to the run's own), because the machine is
shared and its speed is not constant. Only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_catalog import (  # noqa: E402  (stdlib-only helpers of the catalog benchmark)
    DEFAULT_CATALOG_DIR,
    DEFAULT_GEN,
    DEFAULT_PG_ADMIN,
    _cpu_times,
    _pg_query,
    _vmhwm_kib,
    ensure_catalog,
    machine_info,
    write_results,
)

_SUMMARY = re.compile(
    r"Synced (\d+) location\(s\): (\d+) added, (\d+) updated, (\d+) removed, (\d+) unchanged, (\d+) error"
)


# ---------------------------------------------------------------------------------------
# one run of the command
# ---------------------------------------------------------------------------------------


class TreeSampler:
    """Samples a process and its descendants in a thread: per process, its last CPU time and
    its peak RSS (``VmHWM``, the kernel's own peak, so a peak between samples is not lost if
    the process is sampled once before it exits); and the largest RSS sum over the tree."""

    def __init__(self, pid: int, interval: float) -> None:
        import psutil

        self._psutil = psutil
        self.root = psutil.Process(pid)
        self.interval = interval
        self.cpu: dict[int, float] = {}
        self.hwm: dict[int, int] = {}  # KiB
        self.role: dict[int, str] = {}
        self.tree_peak = 0  # bytes
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def _one(self, proc: Any) -> int:
        cpu = proc.cpu_times()
        rss = proc.memory_info().rss
        self.cpu[proc.pid] = cpu.user + cpu.system
        self.hwm[proc.pid] = max(self.hwm.get(proc.pid, 0), _vmhwm_kib(proc.pid), rss // 1024)
        if proc.pid not in self.role:
            cmd = " ".join(proc.cmdline())
            self.role[proc.pid] = (
                "main" if proc.pid == self.root.pid else "resource_tracker" if "resource_tracker" in cmd
                else "forkserver" if "forkserver" in cmd and proc.ppid() == self.root.pid
                else "parse_worker" if "forkserver" in cmd else "other"
            )
        return int(rss)

    def sample(self) -> None:
        psutil = self._psutil
        total = 0
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        for proc in procs:
            try:
                total += self._one(proc)
            except psutil.Error:
                continue
        self.tree_peak = max(self.tree_peak, total)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def result(self) -> dict[str, Any]:
        by_role: dict[str, float] = {}
        for pid, kib in self.hwm.items():
            role = self.role.get(pid, "other")
            by_role[role] = max(by_role.get(role, 0.0), round(kib / 1024, 1))
        return {
            "tree_cpu_s": round(sum(self.cpu.values()), 2),
            "cpu_by_role_s": {
                role: round(sum(c for p, c in self.cpu.items() if self.role.get(p) == role), 2)
                for role in sorted(set(self.role.values()))
            },
            "peak_mib_by_role": by_role,
            "tree_peak_mib": round(self.tree_peak / 2**20, 1),
            "processes": len(self.cpu),
            "samples": self.samples,
        }


_SOURCE_DIRS = ("callboard", "bot", "catalog", "commands", "providers", "storage")


def code_fingerprint(command: list[str]) -> dict[str, Any]:
    """sha1 over the Python sources of the callboard that ``command`` runs (found through the
    interpreter of its script), so a result says which code it measured."""
    import hashlib

    python = Path(command[0]).with_name("python")
    where = subprocess.run(
        [str(python if python.exists() else sys.executable), "-c",
         "import callboard, pathlib; print(pathlib.Path(callboard.__file__).resolve().parent.parent)"],
        capture_output=True, text=True, cwd="/",  # not this checkout's callboard/ folder
    ).stdout.strip()
    root = Path(where) if where else ROOT
    h = hashlib.sha1()
    files = 0
    for d in _SOURCE_DIRS:
        for f in sorted((root / d).rglob("*.py")):
            if "__pycache__" not in f.parts:
                h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
                files += 1
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return {"root": str(root), "sha1": h.hexdigest()[:12], "files": files, "git_head": head.stdout.strip()}


def callboard_command(explicit: str | None) -> list[str]:
    """The ``callboard`` console script next to this interpreter (what a user runs)."""
    if explicit:
        return [explicit]
    script = Path(sys.executable).with_name("callboard")
    if not script.exists():
        found = shutil.which("callboard")
        if found is None:
            raise SystemExit("no `callboard` command found: pip install -e . in this venv, or pass --callboard")
        script = Path(found)
    return [str(script)]


def run_command(
    cmd: list[str], env: dict[str, str], interval: float, timeout: float, log_file: Path
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    busy0, _ = _cpu_times()
    t0 = time.perf_counter()
    with log_file.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        sampler = TreeSampler(proc.pid, interval).start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            sampler.stop()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    busy1, _ = _cpu_times()
    out = log_file.read_text(errors="replace")
    res: dict[str, Any] = {
        "wall_s": round(wall, 3),
        "returncode": proc.returncode,
        **sampler.result(),
        # the command and the descendants it reaped (the parse workers are the fork server's)
        "rusage_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "rusage_maxrss_mib": round(usage.ru_maxrss / 1024, 1),
        "loadavg_1m_before": round(load_before, 2),
        "machine_busy_cpu_s": round(busy1 - busy0, 2),
    }
    res["other_cpu_s"] = round(res["machine_busy_cpu_s"] - res["tree_cpu_s"], 2)
    m = _SUMMARY.search(" ".join(out.split()))
    if m:
        keys = ("locations", "added", "updated", "removed", "unchanged", "errors")
        res["summary"] = dict(zip(keys, map(int, m.groups())))
    docs = re.search(r"TechDocs: .*?(?:\n\S|\Z)", out, re.S)
    if docs:
        res["docs_line"] = " ".join(docs.group(0).split())
    if proc.returncode != 0 or not m:
        res["log_tail"] = out[-3000:]
    return res


# ---------------------------------------------------------------------------------------
# the parts, in-process (a fresh process of this script)
# ---------------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.t: dict[str, float] = {}
        self.n: dict[str, int] = {}

    def add(self, name: str, dt: float) -> None:
        self.t[name] = self.t.get(name, 0.0) + dt
        self.n[name] = self.n.get(name, 0) + 1

    def wrap_async(self, owner: Any, attr: str, name: str) -> None:
        fn = getattr(owner, attr)

        async def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return await fn(*a, **k)
            finally:
                self.add(name, time.perf_counter() - t)

        setattr(owner, attr, timed)

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        fn = getattr(owner, attr)

        def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.add(name, time.perf_counter() - t)

        setattr(owner, attr, timed)

    def wrap_agen(self, owner: Any, attr: str, name: str) -> None:
        """An async generator method: the time the caller waits for each item."""
        fn = getattr(owner, attr)

        async def timed(*a: Any, **k: Any) -> Any:
            agen = fn(*a, **k)
            while True:
                t = time.perf_counter()
                try:
                    item = await agen.__anext__()
                except StopAsyncIteration:
                    self.add(name, time.perf_counter() - t)
                    return
                self.add(name, time.perf_counter() - t)
                yield item

        setattr(owner, attr, timed)


def parts_main(args: argparse.Namespace) -> int:
    import asyncio
    import resource

    t0 = time.perf_counter()
    import callboard.bot.cli  # noqa: F401  (what the command imports)

    t_import = time.perf_counter() - t0
    from callboard.bot.app import Callboard
    from callboard.bot.config import load_settings
    from callboard.catalog import sync as sync_mod
    from callboard.providers import files
    from callboard.providers.techdocs.service import TechDocs
    from callboard.storage import repo

    clock = _Clock()
    clock.wrap_async(files.FileSource, "read", "catalog.read")
    clock.wrap(files, "_split_known", "catalog.split_and_fingerprint (thread)")
    clock.wrap_agen(files.FileSource, "process", "catalog.wait_for_parsed_batches")
    clock.wrap(sync_mod, "plan_batch", "catalog.plan")
    clock.wrap_async(sync_mod, "_apply", "catalog.write_batches")
    clock.wrap_async(repo, "create_bulk_indexes", "catalog.secondary_indexes")
    clock.wrap_async(sync_mod.SyncEngine, "_finish", "catalog.removals_at_end")
    clock.wrap_async(repo, "entities_with_docs", "docs.query_entities_with_docs")
    clock.wrap(TechDocs, "_locate_all", "docs.locate_and_hash (thread)")

    async def go() -> dict[str, Any]:
        settings = load_settings(config_file=None, database_url=args.db_url, catalog=(args.catalog,))
        out: dict[str, Any] = {}
        t = time.perf_counter()
        app = await Callboard.open(settings, answering=False)
        out["open_s"] = time.perf_counter() - t
        t = time.perf_counter()
        summary = await app.sync((args.catalog,))
        out["catalog_sync_s"] = time.perf_counter() - t
        t = time.perf_counter()
        docs = await app.sync_docs()
        out["docs_pass_s"] = time.perf_counter() - t
        t = time.perf_counter()
        await app.close()
        out["close_s"] = time.perf_counter() - t
        out["summary"] = {"added": summary.added, "updated": summary.updated, "removed": summary.removed,
                          "unchanged": summary.unchanged, "errors": len(summary.errors)}
        out["docs"] = {"built": docs.built, "unchanged": docs.unchanged, "failed": docs.failed,
                       "removed": docs.removed, "nothing": docs.nothing}
        out["search_index_loaded"] = app.catalog.following
        return out

    res = asyncio.run(go())
    res["import_cli_s"] = t_import
    res["parts_s"] = {k: v for k, v in sorted(clock.t.items())}
    res["calls"] = dict(sorted(clock.n.items()))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    res["self_cpu_s"] = ru.ru_utime + ru.ru_stime
    res["self_maxrss_mib"] = ru.ru_maxrss / 1024
    res["process_s_until_here"] = time.perf_counter() - t0
    for k, v in list(res.items()):
        if isinstance(v, float):
            res[k] = round(v, 4)
    res["parts_s"] = {k: round(v, 4) for k, v in res["parts_s"].items()}
    Path(args.result_file).write_text(json.dumps(res, indent=1))
    return 0


def run_parts(python: str, db_url: str, catalog: Path, env: dict[str, str], workdir: Path, phase: str,
              timeout: float) -> dict[str, Any]:
    result_file = workdir / f"parts-{phase}.json"
    result_file.unlink(missing_ok=True)
    cmd = [python, str(Path(__file__).resolve()), "--parts-phase", "--db-url", db_url,
           "--catalog", str(catalog), "--result-file", str(result_file)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t
    try:
        res = json.loads(result_file.read_text())
    except (OSError, ValueError):
        return {"ok": False, "returncode": proc.returncode, "log_tail": (proc.stdout + proc.stderr)[-3000:]}
    res["process_wall_s"] = round(wall, 3)
    res["ok"] = proc.returncode == 0
    return res


# ---------------------------------------------------------------------------------------
# orchestration
# ---------------------------------------------------------------------------------------


def _stats(values: list[float]) -> dict[str, float]:
    """median, min, max and nearest-rank p99 (with few runs p99 is the maximum)."""
    if not values:
        return {}
    s = sorted(values)
    p99 = s[min(len(s) - 1, max(0, -(-99 * len(s) // 100) - 1))]
    return {"n": len(s), "median": round(statistics.median(s), 3), "min": round(s[0], 3),
            "max": round(s[-1], 3), "p99": round(p99, 3)}


def _fresh_db(db: str, wd: Path, name: str, args: argparse.Namespace) -> str:
    if db == "sqlite":
        for f in wd.glob("callboard.db*"):
            f.unlink()
        return f"sqlite:///{(wd / 'callboard.db').resolve()}"
    _pg_query(args.pg_admin, f'DROP DATABASE IF EXISTS "{name}"')
    _pg_query(args.pg_admin, f'CREATE DATABASE "{name}"')
    return args.pg_admin.rsplit("/", 1)[0] + "/" + name


def _check(phase: str, res: dict[str, Any], entities: int) -> bool:
    s = res.get("summary")
    if res.get("returncode") != 0 or not s or s["errors"]:
        return False
    if phase == "cold":
        return s["added"] == entities and s["unchanged"] == 0
    return s["unchanged"] == entities and s["added"] == s["updated"] == s["removed"] == 0


def _line(label: str, phase: str, res: dict[str, Any]) -> str:
    return (f"   {label:8s} {phase:5s} wall={res['wall_s']:.2f}s cpu(tree)={res['tree_cpu_s']:.2f}s "
            f"peak main={res['peak_mib_by_role'].get('main')} tree={res['tree_peak_mib']} MiB "
            f"load={res['loadavg_1m_before']} other_cpu={res['other_cpu_s']}s ok={res['ok']}")


def _env(wd: Path) -> dict[str, str]:
    """The command's environment: its own data folder (docs store); no config file or database
    from the caller's environment; bytecode written as a user's Python does (a session that sets
    PYTHONDONTWRITEBYTECODE would compile every module of the editable install on each run)."""
    env = {**os.environ, "CALLBOARD_DATA_DIR": str(wd / "data")}
    for name in ("CALLBOARD_CONFIG", "CALLBOARD_DATABASE_URL", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    return env


def _variants(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    if not args.variant:
        return [("current", callboard_command(args.callboard))]
    out = []
    for item in args.variant:
        label, sep, path = item.partition("=")
        if not sep or not label or not Path(path).exists():
            raise SystemExit(f"--variant {item!r}: write LABEL=/path/to/callboard")
        out.append((label, [path]))
    return out


def orchestrate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    variants = _variants(args)
    workroot = Path(args.workdir)
    workroot.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "variants": {label: {"callboard": cmd, "code": code_fingerprint(cmd)} for label, cmd in variants},
        "machine": machine_info(args.pg_admin if "postgres" in args.db else None),
        "runs": [],
    }
    write_results(results, out)
    for n in sorted(args.sizes):
        src, sidecar = ensure_catalog(n, Path(args.catalog_dir), Path(args.gen))
        entities = json.loads(sidecar.read_text())["total"]
        for db in args.db:
            run: dict[str, Any] = {"size": n, "db": db, "entities": entities, "catalog_bytes": src.stat().st_size,
                                   "command": "callboard sync --catalog <catalog> --database-url <url>",
                                   "variants": {}}
            results["runs"].append(run)
            print(f"== {db} n={n}", flush=True)
            places: dict[str, tuple[Path, Path, str]] = {}
            for label, _ in variants:
                wd = workroot / f"{db}-{n}-{label}"
                shutil.rmtree(wd, ignore_errors=True)
                (wd / "catalog").mkdir(parents=True)
                catalog = wd / "catalog" / "catalog-info.yaml"  # a folder of its own: its docs (none) are beside it
                shutil.copyfile(src, catalog)
                places[label] = (wd, catalog, f"{args.pg_prefix}_{label}_{n}".lower())
                run["variants"][label] = {"cold": [], "noop": []}
            urls: dict[str, str] = {}
            # the variants take turns, run by run, so that each sees the same machine load
            for phase in ("cold", "noop"):
                for i in range(args.runs):
                    for label, command in variants:
                        wd, catalog, pg_name = places[label]
                        if phase == "cold":
                            urls[label] = _fresh_db(db, wd, pg_name, args)
                            shutil.rmtree(wd / "data", ignore_errors=True)
                        cmd = [*command, "sync", "--catalog", str(catalog), "--database-url", urls[label]]
                        res = run_command(cmd, _env(wd), args.sample_interval, args.timeout,
                                          wd / f"{phase}-{i}.log")
                        res["ok"] = _check(phase, res, entities)
                        run["variants"][label][phase].append(res)
                        print(_line(label, phase, res), flush=True)
                        if not res["ok"]:
                            print(res.get("log_tail", ""), flush=True)
                        write_results(results, out)
            for label, command in variants:
                v = run["variants"][label]
                for phase in ("cold", "noop"):
                    rows = [r for r in v[phase] if r["ok"]]
                    v[f"{phase}_stats"] = {
                        k: _stats([r[k] for r in rows])
                        for k in ("wall_s", "tree_cpu_s", "tree_peak_mib", "loadavg_1m_before", "other_cpu_s")
                    }
                    v[f"{phase}_stats"]["peak_main_mib"] = _stats([r["peak_mib_by_role"].get("main", 0.0) for r in rows])
                if args.parts:
                    wd, catalog, pg_name = places[label]
                    python = str(Path(command[0]).with_name("python"))
                    db_url = _fresh_db(db, wd, pg_name, args)
                    shutil.rmtree(wd / "data", ignore_errors=True)
                    v["parts"] = {}
                    for phase in ("cold", "noop"):
                        v["parts"][phase] = p = run_parts(python, db_url, catalog, _env(wd), wd, phase, args.timeout)
                        print(f"   {label:8s} parts {phase}: " + json.dumps({k: p.get(k) for k in (
                            "import_cli_s", "open_s", "catalog_sync_s", "docs_pass_s", "close_s")}), flush=True)
                        print("      " + json.dumps(p.get("parts_s")), flush=True)
                v["code"] = code_fingerprint(command)
                wd, _, pg_name = places[label]
                if db == "postgres" and not args.keep:
                    _pg_query(args.pg_admin, f'DROP DATABASE IF EXISTS "{pg_name}"')
                if not args.keep:
                    shutil.rmtree(wd, ignore_errors=True)
            write_results(results, out)
    for label, cmd in variants:
        if code_fingerprint(cmd)["sha1"] != results["variants"][label]["code"]["sha1"]:
            print(f"WARNING: the sources of {label} changed during the run")
    results["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    write_results(results, out)
    print(f"wrote {out}")
    return 0


def _cell(stats: dict[str, float], digits: int = 2) -> str:
    if not stats:
        return "–"
    return f"{stats['median']:.{digits}f} ({stats['min']:.{digits}f}–{stats['max']:.{digits}f})"


def report(path: Path) -> str:
    """Markdown tables of a results file: per size, database and variant, the median (min–max)
    of each figure over the runs; and the parts."""
    results = json.loads(path.read_text())
    out = [
        "| N | DB | code | cold wall s | cold CPU s (tree) | cold peak MiB main / tree | no-op wall s "
        "| no-op CPU s | no-op peak MiB main | load (1 min) | ok runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in results["runs"]:
        for label, v in run["variants"].items():
            c, n = v.get("cold_stats", {}), v.get("noop_stats", {})
            loads = [r["loadavg_1m_before"] for ph in ("cold", "noop") for r in v[ph]]
            ok = sum(r["ok"] for ph in ("cold", "noop") for r in v[ph])
            total = sum(len(v[ph]) for ph in ("cold", "noop"))
            out.append(
                f"| {run['size']:,} | {run['db']} | {label} | {_cell(c.get('wall_s', {}))} | "
                f"{_cell(c.get('tree_cpu_s', {}))} | {c.get('peak_main_mib', {}).get('max', 0):.0f} / "
                f"{c.get('tree_peak_mib', {}).get('max', 0):.0f} | {_cell(n.get('wall_s', {}))} | "
                f"{_cell(n.get('tree_cpu_s', {}))} | {n.get('peak_main_mib', {}).get('max', 0):.0f} | "
                f"{min(loads):.1f}–{max(loads):.1f} | {ok}/{total} |"
            )
    parts = [(run, label, v["parts"]) for run in results["runs"] for label, v in run["variants"].items()
             if v.get("parts")]
    if parts:
        names = sorted({k for _, _, p in parts for ph in p.values() for k in (ph.get("parts_s") or {})})
        out += ["", "| N | DB | code | phase | import s | open s | catalog sync s | docs pass s | "
                + " | ".join(names) + " |", "|---" * (8 + len(names)) + "|"]
        for run, label, p in parts:
            for phase, ph in p.items():
                cells = [f"{ph.get(k, 0):.3f}" for k in ("import_cli_s", "open_s", "catalog_sync_s", "docs_pass_s")]
                cells += [f"{(ph.get('parts_s') or {}).get(k, 0):.3f}" if k in (ph.get("parts_s") or {}) else "–"
                          for k in names]
                out.append(f"| {run['size']:,} | {run['db']} | {label} | {phase} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50000, 100000])
    ap.add_argument("--db", nargs="+", choices=("sqlite", "postgres"), default=["sqlite"])
    ap.add_argument("--runs", type=int, default=3, help="runs of each phase (cold, no-op)")
    ap.add_argument("--parts", action="store_true", help="also time the parts in-process (one cold, one no-op)")
    ap.add_argument("--out", default=str(HERE / "results" / "sync.json"))
    ap.add_argument("--callboard", help="the callboard executable to run (default: the one beside this python)")
    ap.add_argument("--variant", action="append", metavar="LABEL=PATH",
                    help="compare installs: each a label and its callboard executable; they take turns, run by "
                         "run (e.g. --variant before=/tmp/base/bin/callboard --variant after=.venv/bin/callboard)")
    ap.add_argument("--catalog-dir", default=str(DEFAULT_CATALOG_DIR), help="where catalog-N.yaml(+.json) live")
    ap.add_argument("--gen", default=str(DEFAULT_GEN), help="gen_catalog.py, for missing catalogs")
    ap.add_argument("--workdir", default=str(HERE / "work" / "sync"))
    ap.add_argument("--pg-admin", default=DEFAULT_PG_ADMIN, help="maintenance DB URL used for CREATE/DROP DATABASE")
    ap.add_argument("--pg-prefix", default="cb_bench_sync", help="benchmark databases are <prefix>_<N>")
    ap.add_argument("--keep", action="store_true", help="keep the work folders and PostgreSQL databases")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--sample-interval", type=float, default=0.05, help="psutil sampling period, s")
    ap.add_argument("--report", metavar="RESULTS", help="print Markdown tables of a results file and exit")
    # internal: the parts, in this process
    ap.add_argument("--parts-phase", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--db-url", help=argparse.SUPPRESS)
    ap.add_argument("--catalog", help=argparse.SUPPRESS)
    ap.add_argument("--result-file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.report:
        print(report(Path(args.report)))
        return 0
    if args.parts_phase:
        return parts_main(args)
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
