#!/usr/bin/env python3
"""How long a reader waits for each notebook cell: execute notebooks headless in the evcxr
kernel, exactly as `just test-notebooks` does (same kernel, same evcxr configuration, nothing
saved), and report every code cell's seconds from the kernel's own timestamps in the executed
notebook's metadata (`execution`: from `iopub.execute_input` to `shell.execute_reply`).

    just notebook-latency                         # every notebook, twice: the second run is warm
    just notebook-latency --runs 3                # two warm runs, each cell's median reported
    .venv-jupyter/bin/python scripts/notebook_latency.py [NOTEBOOK ...] [--runs 2] [--json FILE]

Run it with EVCXR_CONFIG_DIR set as the justfile sets it (the recipe does). Each run starts a
fresh kernel per notebook; the first run also fills evcxr's compilation cache, so the later
runs are the warm figure a returning reader sees (with more than one warm run, each cell's
median over them: a cell's seconds vary by about 1 s from run to run). Reported per notebook:
the first cell (the `:dep` of the library), the median and the largest cell, and the total. The goal (issue 20):
warm, first cell at most 10 s and median cell at most 2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_peers import cpu_info, record_per_cpu  # noqa: E402
from render_notebooks import REPO, RenderError, execute  # noqa: E402

FIRST_CELL_GOAL, MEDIAN_CELL_GOAL = 10.0, 2.0


def cell_seconds(nb) -> list[float]:
    """Each code cell's seconds from its `execution` timestamps."""
    seconds = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        execution = cell.metadata.get("execution", {})
        start, end = execution.get("iopub.execute_input"), execution.get("shell.execute_reply")
        if start is None or end is None:
            raise RenderError("a code cell has no execution timestamps (nbclient record_timing)")
        seconds.append((datetime.fromisoformat(end.replace("Z", "+00:00"))
                        - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds())
    return seconds


def summary(seconds: list[float]) -> dict:
    return {
        "first_cell": seconds[0],
        "median_cell": statistics.median(seconds),
        "max_cell": max(seconds),
        "total": sum(seconds),
        "cells": seconds,
    }


def warm_cells(runs: list[dict]) -> list[float]:
    """Each cell's median over the warm runs (all but the first; the only one if there is one)."""
    warm = runs[1:] or runs
    return [statistics.median(cells) for cells in zip(*(r["cells"] for r in warm))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--runs", type=int, default=2, help="executions of each notebook; all but the first are warm (default 2)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    parser.add_argument("--json", type=Path, help="also record every cell's seconds in this file (one run per CPU: a run on another CPU is kept)")
    args = parser.parse_args()
    if args.runs < 1:
        print("error: --runs must be at least 1", file=sys.stderr)
        return 2
    if "EVCXR_CONFIG_DIR" not in os.environ:
        print("warning: EVCXR_CONFIG_DIR is unset: evcxr runs without the tests' configuration", file=sys.stderr)
    notebooks = [p.resolve() for p in args.notebooks] or sorted((REPO / "notebooks").glob("*.ipynb"))
    started = time.monotonic()
    results = {}
    for path in notebooks:
        runs = []
        for run in range(args.runs):
            try:
                nb, _ = execute(path, args.timeout, record_timing=True)
                runs.append(summary(cell_seconds(nb)))
            except RenderError as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            r = runs[-1]
            print(f"{path.name} run {run + 1}: first cell {r['first_cell']:.1f} s, median cell {r['median_cell']:.1f} s, "
                  f"largest {r['max_cell']:.1f} s, {len(r['cells'])} cells, {r['total']:.0f} s in all", flush=True)
        results[path.name] = runs

    print()
    print("| notebook | code cells | first cell (s) | median cell (s) | largest cell (s) | total (s) |")
    print("|---|---|---|---|---|---|")
    within = True
    for name, runs in results.items():
        warm = summary(warm_cells(runs))
        within &= warm["first_cell"] <= FIRST_CELL_GOAL and warm["median_cell"] <= MEDIAN_CELL_GOAL
        print(f"| {name} | {len(warm['cells'])} | {warm['first_cell']:.1f} | {warm['median_cell']:.1f} "
              f"| {warm['max_cell']:.1f} | {warm['total']:.0f} |")
    warm_runs = "run 1, cold" if args.runs == 1 else "run 2" if args.runs == 2 else f"cell medians of runs 2-{args.runs}"
    print(f"\n# warm ({warm_runs}); goal: first cell ≤ {FIRST_CELL_GOAL:.0f} s, median cell "
          f"≤ {MEDIAN_CELL_GOAL:.0f} s: {'met' if within else 'not met'} in every notebook; "
          f"{time.monotonic() - started:.0f} s in all")
    if args.json:
        entry = {"cpu": cpu_info(), "date": datetime.now().date().isoformat(), "executions": args.runs, "notebooks": results}
        record_per_cpu(args.json, entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
