#!/usr/bin/env python3
"""Scaffolder dry-run benchmark: the time of each reference template's dry-run (the engine, in
process: load the template, render every step, write the skeleton into a fresh workspace),
with the request values of Backstage's expected runs.

Usage (from the project root)::

    python bench/bench_scaffolder.py --runs 200 --out bench/results/scaffolder.json

Reads the cases from ``shared/reference/backstage/expected/scaffolder`` (beside the checkout, or
``CALLBOARD_REFERENCE_DIR``). Reports per case the median and p99 of ``--runs`` runs (after
``--warmup`` runs; ``first`` is the very first run, when its templates are compiled), and whether the run succeeded (a case Backstage fails fails here too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _reference() -> Path:
    configured = os.environ.get("CALLBOARD_REFERENCE_DIR")
    here = Path(__file__).resolve()
    candidates = [Path(configured)] if configured else [p / "shared" / "reference" for p in here.parents[1:3]]
    for c in candidates:
        if (c / "backstage").is_dir():
            return c
    sys.exit("reference data not found: put shared/reference beside the checkout or set CALLBOARD_REFERENCE_DIR")


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, int(round(0.99 * len(ordered))) - 1))]


async def _bench(case_file: Path, shared: Path, runs: int, warmup: int, work: Path) -> dict[str, Any]:
    import yaml

    from callboard.scaffolder.actions.api import ActionDeps
    from callboard.scaffolder.engine import execute
    from callboard.scaffolder.model import Runner, template_from_document

    case = json.loads(case_file.read_text(encoding="utf-8"))
    folder = shared / case["template_dir"].split("shared/reference/", 1)[1]
    request = case["request"]
    timings: list[float] = []
    first = 0.0
    ok = None
    for i in range(warmup + runs):
        workspace = work / f"{case_file.stem}-{i}"
        start = time.perf_counter()
        doc = yaml.safe_load((folder / "template.yaml").read_text(encoding="utf-8"))
        template = template_from_document(doc, base_dir=folder)
        result = await execute(template, request["values"] or {}, secrets=request.get("secrets") or {},
                               user=Runner(), workspace=workspace, deps=ActionDeps(), dry_run=True)
        elapsed = time.perf_counter() - start
        shutil.rmtree(workspace, ignore_errors=True)
        ok = result.ok
        if i == 0:
            first = elapsed
        if i >= warmup:
            timings.append(elapsed)
    return {"case": case_file.name, "ok": ok, "backstage_ok": case["ok"], "runs": runs,
            "median_ms": round(statistics.median(timings) * 1000, 3), "p99_ms": round(_p99(timings) * 1000, 3),
            "first_ms": round(first * 1000, 3),
            "files": len(case.get("files") or [])}


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    shared = _reference()
    cases = sorted((shared / "backstage" / "expected" / "scaffolder").glob("*.json"))
    results = []
    with tempfile.TemporaryDirectory(prefix="callboard-bench-scaffolder-") as tmp:
        for case_file in cases:
            row = await _bench(case_file, shared, args.runs, args.warmup, Path(tmp))
            results.append(row)
            print(f"{row['case']:<48} ok={str(row['ok']):<5} first {row['first_ms']:8.2f} ms   "
                  f"median {row['median_ms']:8.2f} ms   p99 {row['p99_ms']:8.2f} ms")
    report = {"machine": {"python": platform.python_version(), "platform": platform.platform(),
                          "cpus": os.cpu_count(), "load_1m": os.getloadavg()[0]},
              "runs": args.runs, "warmup": args.warmup, "results": results}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
