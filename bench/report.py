#!/usr/bin/env python3
"""Markdown tables from ``bench_catalog.py`` results.

    python bench/report.py bench/results/catalog.json            # full tables per database
    python bench/report.py --glance bench/results/catalog.json   # the summary table
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _f(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _ms(stats: dict[str, Any] | None) -> str:
    if not stats or not stats.get("n"):
        return "–"
    return f"{stats['p50_ms']:.2f} / {stats['p99_ms']:.2f} / {stats['max_ms']:.2f}"


def _ms_short(stats: dict[str, Any] | None, digits: int = 2) -> str:
    if not stats or not stats.get("n"):
        return "–"
    return f"{stats['p50_ms']:.{digits}f} / {stats['p99_ms']:.{digits}f}"


def _mem(ph: dict[str, Any]) -> str:
    worker = ph.get("largest_worker_vmhwm_mib")
    main = ph.get("self_maxrss_mib")
    if worker:
        return f"{_f(main, 0)} / {_f(worker, 0)}"
    return f"{_f(main, 0)} / –"


PH = ("cold", "noop", "changed", "owner", "owner_resident")


def tables(results: dict[str, Any]) -> str:
    out: list[str] = []
    dbs = list(dict.fromkeys(r["db"] for r in results["runs"]))
    for db in dbs:
        runs = sorted((r for r in results["runs"] if r["db"] == db), key=lambda r: r["size"])
        out.append(f"### {db}\n")
        out.append("Sync (seconds; RSS columns are MiB: main process peak / largest parse worker peak)\n")
        out.append(
            "| N | cold: sync s | entities/s | cold: process wall s | cold RSS main / worker | tree peak MiB (sampled) "
            "| no-op: process wall s | no-op: open s (index load s) | no-op: sync s | no-op RSS main "
            "| 1 edited: sync s | updated | 1 edited RSS main / worker | DB size MB |"
        )
        out.append("|" + "---|" * 14)
        for r in runs:
            p = r["phases"]
            c, n, e = p.get("cold", {}), p.get("noop", {}), p.get("changed", {})
            upd = (e.get("summary") or {}).get("updated")
            ok = all(ph.get("ok") and all((ph.get("checks") or {}).values()) for ph in (c, n, e))
            out.append(
                f"| {r['size']:,} | {_f(c.get('sync_s'))} | {_f(c.get('entities_per_s'), 0)} | {_f(c.get('process_wall_s'))} "
                f"| {_mem(c)} | {_f(c.get('sampled_tree_peak_mib'), 0)} "
                f"| {_f(n.get('process_wall_s'))} | {_f(n.get('open_s'))} ({_f(n.get('index_load_s'))}) | {_f(n.get('sync_s'), 3)} "
                f"| {_f(n.get('self_maxrss_mib'), 0)} "
                f"| {_f(e.get('sync_s'), 3)} | {upd}{'' if ok else ' ⚠'} | {_mem(e)} "
                f"| {_f((r.get('db_size_bytes') or 0) / 1e6, 1)} |"
            )
        out.append("")
        out.append("`owner` latency in ms, p50 / p99 / max over 200 calls; typo accuracy = right entity answered\n")
        out.append(
            "| N | open mode | owner exact | owner with typo | typo accuracy | typo statuses | search() exact "
            "| search() typo | catalog.get() alone | phase RSS main MiB |"
        )
        out.append("|" + "---|" * 10)
        for r in runs:
            for phase, mode in (("owner", "default"), ("owner_resident", "resident=True")):
                o = r["phases"].get(phase)
                if not o or o.get("skipped"):
                    continue
                if not o.get("ok"):
                    out.append(f"| {r['size']:,} | {mode} | failed: {o.get('error', '?')} |||||||")
                    continue
                ot = o.get("owner_typo") or {}
                st = ", ".join(f"{k} {v}" for k, v in sorted((ot.get("statuses") or {}).items()))
                out.append(
                    f"| {r['size']:,} | {mode} | {_ms(o.get('owner_exact'))} | {_ms(ot)} "
                    f"| {ot.get('correct', '–')}/{ot.get('of', '–')} | {st or '–'} "
                    f"| {_ms_short(o.get('search_exact'), 3)} | {_ms_short(o.get('search_typo'))} "
                    f"| {_ms_short(o.get('catalog_get'))} | {_f(o.get('self_maxrss_mib'), 0)} |"
                )
        out.append("")
        out.append("Interference check per phase: machine busy CPU s / this phase's own CPU s / 1-min load before\n")
        out.append("| N | " + " | ".join(PH) + " |")
        out.append("|" + "---|" * (len(PH) + 1))
        for r in runs:
            cells = []
            for ph in PH:
                x = r["phases"].get(ph) or {}
                if "machine_busy_cpu_s" not in x:
                    cells.append("–")
                    continue
                own = (x.get("self_cpu_s") or 0) + (x.get("children_cpu_s") or 0)
                cells.append(f"{x['machine_busy_cpu_s']:.1f} / {own:.1f} / {x.get('loadavg_1m_before', 0):.1f}")
            out.append(f"| {r['size']:,} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def glance(results: dict[str, Any]) -> str:
    """One row per (database, size): the figures the issue sets targets for."""
    out = [
        "| DB | N | cold sync s | cold RSS main / worker / tree MiB | no-op re-sync: new process s (sync call s) "
        "| one entity edited: sync s | `owner` exact, serve/chat (one-shot) | `owner` with a typo, serve/chat (one-shot) "
        "| typo accuracy |",
        "|" + "---|" * 9,
    ]
    for r in sorted(results["runs"], key=lambda r: (r["size"], r["db"] != "sqlite")):
        p = r["phases"]
        c, n, e = p.get("cold", {}), p.get("noop", {}), p.get("changed", {})
        o, res = p.get("owner") or {}, p.get("owner_resident") or {}
        typo = res.get("owner_typo") or {}
        out.append(
            f"| {r['db']} | {r['size']:,} | {_f(c.get('sync_s'))} | {_mem(c).replace(' / –', '')} / "
            f"{_f(c.get('sampled_tree_peak_mib'), 0)} | {_f(n.get('process_wall_s'))} ({_f(n.get('sync_s'), 3)}) "
            f"| {_f(e.get('sync_s'))} | {_ms_short(res.get('owner_exact'))} ({_ms_short(o.get('owner_exact'))}) "
            f"| {_ms_short(typo)} ({_ms_short(o.get('owner_typo'))}) | {typo.get('correct', '–')}/{typo.get('of', '–')} |"
        )
    return "\n".join(out) + "\n"


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path = Path(args[0] if args else Path(__file__).parent / "results" / "catalog.json")
    results = json.loads(path.read_text())
    print(glance(results) if "--glance" in sys.argv else tables(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
