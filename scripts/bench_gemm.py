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


# How many times one update makes each product (network, layer, product), so that the shape
# timings add up to the products of a whole update. Layer 0 takes the state (and the action),
# layer 2 is the output layer; "input" products of layer 0 are needed only to reach ∇ₐq.
#   DDPG (steps 6.6-6.8): the actor runs forward on s' (its target) and on s; the critic on
#   (s', a') (its target), (s, a) and (s, d(s)); the critic's loss backpropagates with weight
#   gradients and input gradients down to layer 1; the actor step takes ∇ₐq through every
#   critic layer, then the actor's weight gradients and input gradients down to layer 1.
#   SAC: the actor runs forward on s' and on s; each of the twin critics on (s', a') (targets),
#   (s, a) and (s, ã); each critic's loss backpropagates as DDPG's does, and the actor step
#   takes ∇ₐq through both critics, then the actor's own backward pass.
def products_per_update(algo: str) -> dict[tuple[str, int, str], int]:
    actor, critic, twins = f"{algo}_actor", f"{algo}_critic", 2 if algo == "sac" else 1
    counts = {}
    for layer in range(3):
        counts[(actor, layer, "forward")] = 2
        counts[(critic, layer, "forward")] = 3 * twins
        counts[(critic, layer, "weight")] = twins
        counts[(actor, layer, "weight")] = 1
        counts[(critic, layer, "input")] = (2 if layer > 0 else 1) * twins
        counts[(actor, layer, "input")] = 1 if layer > 0 else 0
    return counts


def update_bounds(shapes: list[dict], updates: list[dict]) -> list[dict]:
    """Seconds one update spends in matrix products at each library's measured speed, shape by
    shape, and the steps/s that would leave: with no other work at all, and with our own time
    outside matrix products added. The "fastest" column takes the fastest of the four at every
    shape, a ceiling no single library reaches."""
    by_key = {(s["network"], s["layer"], s["product"].split()[0]): s for s in shapes}
    bounds = []
    for update in updates:
        counts = products_per_update(update["algo"])
        flops = sum(n * 2 * by_key[k]["m"] * by_key[k]["n"] * by_key[k]["k"] for k, n in counts.items())
        seconds = {}
        for library in ("ours", "gemm_crate", "openblas", "torch", "fastest"):
            total = 0.0
            for key, n in counts.items():
                s = by_key[key]
                g = max(s["gflops"].values()) if library == "fastest" else s["gflops"][library]
                total += n * 2 * s["m"] * s["n"] * s["k"] / (g * 1e9)
            seconds[library] = total
        outside = (update["seconds"] - update["gemm_seconds"]) / update["steps"]
        bounds.append({
            "algo": update["algo"],
            "gflop_per_update": flops / 1e9,
            "product_seconds": seconds,
            "outside_seconds_per_step": outside,
            "steps_per_second_products_only": {k: 1 / v for k, v in seconds.items()},
            "steps_per_second_with_our_outside": {k: 1 / (v + outside) for k, v in seconds.items()},
        })
    return bounds


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
    ours["update_bounds"] = update_bounds(ours["shapes"], ours["updates"])
    print()
    print("| algorithm | GFLOP per update | products at ours | OpenBLAS | torch | fastest at each shape | outside products (ours) |")
    print("|---|---|---|---|---|---|---|")
    for b in ours["update_bounds"]:
        ms = {k: f"{1e3 * v:.2f} ms ({b['steps_per_second_with_our_outside'][k]:.0f} steps/s)" for k, v in b["product_seconds"].items()}
        print(
            f"| {b['algo']} | {b['gflop_per_update']:.3f} | {ms['ours']} | {ms['openblas']} | {ms['torch']} | {ms['fastest']} "
            f"| {1e3 * b['outside_seconds_per_step']:.2f} ms |"
        )
    print("# steps/s in brackets: one step at that speed of products plus our own time outside them")
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
