#!/usr/bin/env python3
"""Where an update's time goes, side by side on one core: our GEMM at the exact shapes of one
SAC and one DDPG update (Pendulum-v1, zoo sizes, batch 256) against OpenBLAS (through numpy,
its own choice of kernel for the CPU) and oneDNN/MKL (through torch), and the share of our
training step spent outside matrix products.

    just bench-gemm                     # builds ours, runs this in .venv-peers
    .venv-peers/bin/python scripts/bench_gemm.py [--rounds 3] [--repeats 7] [--steps 2000] [--json out.json]

Every measurement runs in a fresh process pinned with `taskset` to core 0, with every library's
thread count set to 1. Our process and the peers' alternate for `rounds` rounds (the order
rotates), and each figure is the median over rounds: a machine whose speed drifts over
minutes (a shared host) then biases neither side. For each product, the operands are laid out as our network code
(`src/nn/mlp.rs`) lays them out: forward `X·W`, weight gradient `Xᵀ·δ` (X read transposed),
input gradient `δ·Wᵀ` (W read transposed); the Python side passes transposed views, which
numpy and torch hand to their BLAS as transpose flags. Time per call: the median over
`repeats` bursts of at least 20 ms of the mean time of one call, `out=` preallocated. A Python
call costs about a microsecond (numpy) to a few (torch) of its own: on the smallest products
(a few microseconds of arithmetic) the peers' figures include it, as a Python training loop pays it.

Our side is `examples/gemm_shapes.rs` (built with the `gemm-timing` feature, which also times
`steps` SAC and DDPG training steps and the seconds inside `matmul`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_peers import blas_info, cpu_info, our_example, own_kernel_env, pinned, record_per_cpu, run_line  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MIN_BURST_SECONDS = 0.02


def seconds_per_call(call, repeats: int) -> float:
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < MIN_BURST_SECONDS:
        call()
        calls += 1
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        times.append((time.perf_counter() - start) / calls)
    times.sort()
    return times[len(times) // 2]


def peer_worker(shapes: list[dict], repeats: int) -> None:
    """GFLOP/s of numpy and torch at each shape, in this (pinned, one-thread) process."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    out = []
    for s in shapes:
        m, n, k = s["m"], s["n"], s["k"]
        # A transposed: stored k×m, used as its transpose; B transposed: stored n×k.
        a = rng.uniform(-1, 1, (k, m) if s["a_transposed"] else (m, k)).astype(np.float32)
        b = rng.uniform(-1, 1, (n, k) if s["b_transposed"] else (k, n)).astype(np.float32)
        a_op = a.T if s["a_transposed"] else a
        b_op = b.T if s["b_transposed"] else b
        c = np.empty((m, n), dtype=np.float32)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        ta_op = ta.t() if s["a_transposed"] else ta
        tb_op = tb.t() if s["b_transposed"] else tb
        tc = torch.empty((m, n), dtype=torch.float32)
        flops = 2.0 * m * n * k
        with torch.inference_mode():
            numpy_s = seconds_per_call(lambda: np.matmul(a_op, b_op, out=c), repeats)
            torch_s = seconds_per_call(lambda: torch.mm(ta_op, tb_op, out=tc), repeats)
        out.append({"openblas": flops / numpy_s / 1e9, "torch": flops / torch_s / 1e9})
    print("peer_gemm_json " + json.dumps({"gflops": out, "blas": blas_info(), "torch": torch.__version__, "numpy": np.__version__}), flush=True)


def run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"bench_gemm: {' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="alternations of ours and the peers (default 3)")
    parser.add_argument("--repeats", type=int, default=7, help="bursts per product (default 7)")
    parser.add_argument("--steps", type=int, default=2000, help="profiled SAC and DDPG training steps (default 2000)")
    parser.add_argument("--ours", type=Path, help="the gemm_shapes binary (default: target/release/examples/gemm_shapes)")
    parser.add_argument("--json", type=Path, help="also record every measurement in this file (one run per CPU: a run on another CPU is kept)")
    parser.add_argument("--peer-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.rounds, args.repeats, args.steps) < 1:
        raise SystemExit("bench_gemm: --rounds, --repeats and --steps must be at least 1")
    if args.peer_worker:
        peer_worker(json.loads(sys.stdin.read()), args.repeats)
        return
    args.ours = our_example("gemm_shapes", args.ours, features="gemm-timing")

    env = own_kernel_env()
    started = time.time()
    cpu = cpu_info()
    print(f"# bench-gemm: {cpu['model']} ({', '.join(cpu['flags']) or 'no AVX flags'}), load average {os.getloadavg()[0]:.2f}", flush=True)
    ours_command = pinned(1, [str(args.ours), f"steps={args.steps}", f"repeats={args.repeats}"])
    worker = pinned(1, [sys.executable, __file__, "--peer-worker", "--repeats", str(args.repeats)])
    our_rounds, peer_rounds = [], []
    for r in range(args.rounds):
        for side in (("ours", "peers") if r % 2 == 0 else ("peers", "ours")):
            if side == "ours":
                our_rounds.append(json.loads(run(ours_command, env)))
            else:
                # Round 1 runs ours first: the shapes are known by then.
                shapes = json.dumps(our_rounds[0]["shapes"])
                peer_rounds.append(run_line(worker, env, "peer_gemm_json ", shapes))
        print(f"#   round {r + 1} of {args.rounds} done", flush=True)
    ours = our_rounds[0]
    for i, shape in enumerate(ours["shapes"]):
        per_round = {
            "ours": [o["shapes"][i]["gflops"]["ours"] for o in our_rounds],
            "gemm_crate": [o["shapes"][i]["gflops"]["gemm_crate"] for o in our_rounds],
            "openblas": [p["gflops"][i]["openblas"] for p in peer_rounds],
            "torch": [p["gflops"][i]["torch"] for p in peer_rounds],
        }
        shape["gflops"] = {k: statistics.median(v) for k, v in per_round.items()}
        shape["gflops_per_round"] = per_round
    for j, update in enumerate(ours["updates"]):
        rounds = [o["updates"][j] for o in our_rounds]
        for key in ("seconds", "gemm_seconds", "steps_per_second", "share_outside_gemm"):
            update[key] = statistics.median(u[key] for u in rounds)
        update["share_outside_gemm_per_round"] = [u["share_outside_gemm"] for u in rounds]
    peers = peer_rounds[0]

    print()
    print("| network | layer | product | m×n×k | ours | gemm crate | OpenBLAS | torch | ours / best library |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in ours["shapes"]:
        g = s["gflops"]
        best = max(g["openblas"], g["torch"])
        print(
            f"| {s['network']} | {s['layer']} | {s['product']} | {s['m']}×{s['n']}×{s['k']} | {g['ours']:.1f} "
            f"| {g['gemm_crate']:.1f} | {g['openblas']:.1f} | {g['torch']:.1f} | {g['ours'] / best:.0%} |"
        )
    print()
    for u in ours["updates"]:
        print(
            f"# {u['algo']}: {u['steps_per_second']:.1f} steps/s on one core, {u['share_outside_gemm']:.0%} of the "
            f"step outside matrix products ({u['gemm_seconds']:.2f} of {u['seconds']:.2f} s in matmul)"
        )
    blas = ", ".join(f"{d.get('internal_api')} {d.get('version')} {d.get('architecture')}" for d in peers["blas"])
    print(f"# peers: numpy {peers['numpy']} ({blas}), torch {peers['torch']}; {time.time() - started:.0f} s in all")
    if args.json:
        record_per_cpu(
            args.json,
            {
                "cpu": cpu,
                "date": time.strftime("%Y-%m-%d"),
                "rounds": args.rounds,
                "repeats": args.repeats,
                "peers": {k: peers[k] for k in ("blas", "torch", "numpy")},
                **ours,
            },
        )


if __name__ == "__main__":
    main()
