#!/usr/bin/env python3
"""Side by side: our SAC, DDPG and TD3 against Stable-Baselines3 (PyTorch) and sbx (JAX) on
Pendulum-v1 with identical hyperparameters (rl-baselines3-zoo's), in the same run.

    just bench-peers                      # installs .venv-peers, builds ours, runs this
    .venv-peers/bin/python scripts/bench_peers.py [--steps 5000] [--warmup 200] [--repeats 3]
        [--algos sac,ddpg,td3] [--threads 1,2] [--json out.json]

Protocol, for each algorithm x thread count x repeat, the three implementations one after
the other (the order rotates from one repeat to the next), each in a fresh process:
  * pinned with `taskset` to core 0 (1 thread) or cores 0-1 (2 threads), with
    OMP/MKL/OpenBLAS/rayon thread counts, torch.set_num_threads and, for one thread,
    XLA's `--xla_cpu_multi_thread_eigen=false` set to the thread count;
  * `learning_starts` steps of random actions (the zoo's: SAC 100, DDPG and TD3 10 000), then
    `warmup` steps with one update each, untimed (sbx's JIT compile happens there), then
    `steps` timed steps, each an environment step and one gradient update;
  * reported: timed steps per second. The table gives the median over repeats and our
    ratio to each peer.

Our achieved GFLOP/s is the median steps/s times the floating-point operations of one
update counted from the layer sizes (the matrix products of every forward and backward
pass the update needs; Adam, activations and the acting step left out), as a fraction of
the single-core float32 GEMM ceiling measured here (numpy/OpenBLAS 256x256x256, pinned to
core 0; for two threads, twice that): with OpenBLAS's best kernel for the processor (AVX-512
where there is one), and with its AVX2 kernel, the instruction set of our own GEMM.

Peer processes are this script run with --worker. The machine should be quiet: the load
average is printed before and after; PyTorch with 2 threads collapses when the other core
is busy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPLS = ("ours", "sb3", "sbx")
ZOO_LEARNING_STARTS = {"sac": 100, "ddpg": 10_000, "td3": 10_000}
HIDDEN = {"sac": [256, 256], "ddpg": [400, 300], "td3": [400, 300]}
BATCH = 256
TD3_POLICY_DELAY = 2
OBS, ACT = 3, 1  # Pendulum-v1


# --------------------------------------------------------------------------------------
# FLOPs of one update, from the layer sizes


def _dense(widths: list[int], rows: int) -> list[int]:
    """2·rows·in·out per layer: the FLOPs of one layer's forward product (and of each of
    its two backward products, weight and input gradient)."""
    return [2 * rows * i * o for i, o in zip(widths, widths[1:])]


def update_flops(algo: str, batch: int = BATCH) -> float:
    """Matrix-product FLOPs of one update at the zoo's sizes (for TD3, the average over
    `TD3_POLICY_DELAY` consecutive updates).

    SAC (twin critics, policy head mean and log-std): actor forward on s and on s';
    both target critics forward on (s', a'); both critics forward on (s, a) and backward
    (weight gradients, input gradients below the first layer); both critics forward on
    (s, ã) and backward to their inputs (∇ã); the actor backward (weights, and inputs below
    the first layer). DDPG: target actor on s', target critic on (s', a'); the critic
    forward and backward as above; the actor forward on s, the critic forward on (s, d(s))
    and back to its input, the actor backward. TD3, every update: the target actor on s',
    both target critics on (s', ã'), both critics forward and backward as above; every
    `TD3_POLICY_DELAY`-th update only: the actor forward on s, the first critic forward on
    (s, d(s)) and back to its input, the actor backward (ours and SB3's; sbx's actor step
    reads both critics, which this count leaves out).
    """
    h = HIDDEN[algo]
    if algo == "td3":
        actor = _dense([OBS, *h, ACT], batch)
        critic = _dense([OBS + ACT, *h, 1], batch)
        fwd_a, fwd_c = sum(actor), sum(critic)
        every = (
            fwd_a  # target actor on s'
            + 2 * fwd_c  # both target critics on (s', ã')
            + 2 * (fwd_c + fwd_c + sum(critic[1:]))  # both fits: forward, weight and input grads
        )
        delayed = (
            fwd_c + fwd_c  # the first critic at (s, d(s)): forward, input gradient
            + fwd_a + fwd_a + sum(actor[1:])  # the actor forward on s and backward
        )
        return every + delayed / TD3_POLICY_DELAY
    if algo == "sac":
        actor = _dense([OBS, *h, 2 * ACT], batch)
        critic = _dense([OBS + ACT, *h, 1], batch)
        critics = 2
    else:
        actor = _dense([OBS, *h, ACT], batch)
        critic = _dense([OBS + ACT, *h, 1], batch)
        critics = 1
    fwd_a, fwd_c = sum(actor), sum(critic)
    below_first_a, below_first_c = sum(actor[1:]), sum(critic[1:])
    per_critic = (
        fwd_c  # target critic on (s', a')
        + fwd_c + fwd_c + below_first_c  # fit: forward, weight grads, input grads above layer 1
        + fwd_c + fwd_c  # at (s, policy action): forward, input gradient through every layer
    )
    actor_work = 2 * fwd_a + fwd_a + below_first_a  # on s and s'; backward
    return critics * per_critic + actor_work


# --------------------------------------------------------------------------------------
# Threads and pinning


def thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    n = str(threads)
    for key in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "RAYON_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",
    ):
        env[key] = n
    env["TF_NUM_INTEROP_THREADS"] = "1"
    env["JAX_PLATFORMS"] = "cpu"
    env["CUDA_VISIBLE_DEVICES"] = ""
    if threads == 1:
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
    else:
        env.pop("XLA_FLAGS", None)
    return env


def pinned(threads: int, command: list[str]) -> list[str]:
    cpus = ",".join(str(c) for c in range(threads))
    if shutil.which("taskset") is None:
        raise SystemExit("bench_peers: taskset (util-linux) is needed to pin the runs")
    return ["taskset", "-c", cpus, *command]


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


# --------------------------------------------------------------------------------------
# Workers: one peer measurement in this process


def worker(impl: str, algo: str, threads: int, learning_starts: int, warmup: int, steps: int, seed: int) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np
    import gymnasium as gym

    if impl == "sb3":
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        from stable_baselines3 import DDPG, SAC, TD3
        from stable_baselines3.common.noise import NormalActionNoise

        extra = {"device": "cpu"}
    elif impl == "sbx":
        from sbx import DDPG, SAC, TD3
        from stable_baselines3.common.noise import NormalActionNoise

        extra = {"qf_learning_rate": 1e-3}
    else:
        raise SystemExit(f"unknown peer {impl!r}")

    env = gym.make("Pendulum-v1")
    if algo == "sac":
        model = SAC(
            "MlpPolicy",
            env,
            learning_rate=1e-3,
            buffer_size=1_000_000,
            learning_starts=learning_starts,
            batch_size=BATCH,
            tau=0.005,
            gamma=0.99,
            train_freq=1,
            gradient_steps=1,
            ent_coef="auto",
            policy_kwargs={"net_arch": HIDDEN["sac"]},
            seed=seed,
            verbose=0,
            **extra,
        )
    else:
        noise = NormalActionNoise(mean=np.zeros(ACT), sigma=0.1 * np.ones(ACT))
        td3 = {"policy_delay": TD3_POLICY_DELAY, "target_policy_noise": 0.2, "target_noise_clip": 0.5}
        model = (DDPG if algo == "ddpg" else TD3)(
            "MlpPolicy",
            env,
            learning_rate=1e-3,
            buffer_size=200_000,
            learning_starts=learning_starts,
            batch_size=BATCH,
            tau=0.005,
            gamma=0.98,
            train_freq=1,
            gradient_steps=1,
            action_noise=noise,
            policy_kwargs={"net_arch": HIDDEN[algo]},
            seed=seed,
            verbose=0,
            **(td3 if algo == "td3" else {}),
            **extra,
        )
    # Random warm-up, then untimed updates (JIT compile, allocator warm-up).
    model.learn(total_timesteps=learning_starts + warmup)
    start = time.perf_counter()
    model.learn(total_timesteps=steps, reset_num_timesteps=False)
    seconds = time.perf_counter() - start
    print(
        "peer_speed_json "
        + json.dumps(
            {
                "impl": impl,
                "algo": algo,
                "threads": threads,
                "learning_starts": learning_starts,
                "warmup": warmup,
                "steps": steps,
                "seconds": seconds,
                "steps_per_second": steps / seconds,
                "torch_threads": (__import__("torch").get_num_threads() if impl == "sb3" else None),
            }
        ),
        flush=True,
    )


def blas_info() -> list[dict]:
    """The BLAS and OpenMP libraries this process loaded (threadpoolctl), with the kernel
    each chose; empty without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [
        {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
        for d in threadpool_info()
    ]


def sgemm_worker(size: int) -> None:
    import numpy as np

    info = blas_info()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    c = np.empty((size, size), dtype=np.float32)
    for _ in range(20):
        np.matmul(a, b, out=c)
    best = float("inf")
    for _ in range(7):
        n = 200
        start = time.perf_counter()
        for _ in range(n):
            np.matmul(a, b, out=c)
        best = min(best, (time.perf_counter() - start) / n)
    gflops = 2 * size**3 / best / 1e9
    print("sgemm_json " + json.dumps({"size": size, "gflops": gflops, "blas": info}), flush=True)


# --------------------------------------------------------------------------------------
# The driver


def run_line(command: list[str], env: dict[str, str], prefix: str, input_text: str | None = None) -> dict:
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, input=input_text)
    if result.returncode != 0:
        raise SystemExit(
            f"bench_peers: {' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}"
        )
    for line in result.stdout.splitlines():
        if line.startswith(prefix):
            rest = line[len(prefix) :].strip()
            if prefix == "peer_speed ":
                return {k: _number(v) for k, v in (kv.split("=", 1) for kv in rest.split())}
            return json.loads(rest)
    raise SystemExit(f"bench_peers: no {prefix.strip()!r} line from {' '.join(command)}:\n{result.stdout[-2000:]}")


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def our_example(name: str, given: Path | None, features: str = "") -> Path:
    """`given`, or our release example `name` under CARGO_TARGET_DIR (default target/);
    exits with the command that builds it when it is missing."""
    if given is None:
        given = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "examples" / name
    if not given.exists():
        build = f"cargo build --release --example {name}" + (f" --features {features}" if features else "")
        raise SystemExit(f"{Path(sys.argv[0]).stem}: {given} not found: {build}")
    return given


def own_kernel_env() -> dict[str, str]:
    """`thread_env(1)` without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which some machines
    set and which slow a current OpenBLAS: it then runs its own choice of kernel."""
    env = thread_env(1)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    return env


def sgemm_ceiling(size: int, coretype: str | None = None) -> dict:
    """numpy/OpenBLAS float32 GEMM pinned to core 0: with OpenBLAS's own choice of kernel
    (`coretype` None: `own_kernel_env`), or with a named one
    (`Haswell`: the AVX2 kernel, the instruction set our own GEMM uses)."""
    env = own_kernel_env()
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    command = pinned(1, [sys.executable, __file__, "--sgemm-worker", str(size)])
    return run_line(command, env, "sgemm_json ")


def measure(impl: str, algo: str, threads: int, args) -> float:
    learning_starts = ZOO_LEARNING_STARTS[algo]
    env = thread_env(threads)
    if impl == "ours":
        command = [
            str(args.ours),
            f"algo={algo}",
            f"threads={threads}",
            f"warmup={args.warmup}",
            f"steps={args.steps}",
            f"learning_starts={learning_starts}",
        ]
        line = run_line(pinned(threads, command), env, "peer_speed ")
    else:
        command = [
            sys.executable,
            __file__,
            "--worker",
            impl,
            "--algo",
            algo,
            "--threads",
            str(threads),
            "--learning-starts",
            str(learning_starts),
            "--warmup",
            str(args.warmup),
            "--steps",
            str(args.steps),
        ]
        line = run_line(pinned(threads, command), env, "peer_speed_json ")
    return float(line["steps_per_second"])


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("stable-baselines3", "sbx-rl", "torch", "jax", "jaxlib", "gymnasium", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


# CPU flags that decide which kernels a BLAS (and our GEMM) can run.
KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def cpu_info() -> dict:
    """Model name, vendor, family and model numbers, logical CPUs and the kernel-relevant
    flags of /proc/cpuinfo. (Cloud CPUs may all be named "AMD EPYC": the family and model
    numbers tell a Zen 4, family 25, from a Zen 5, family 26.)"""
    model, vendor, flags = platform.processor() or "unknown", "unknown", set()
    family, model_number = None, None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name":
                model = value
            elif key == "vendor_id":
                vendor = value
            elif key == "cpu family":
                family = int(value)
            elif key == "model":
                model_number = int(value)
            elif key == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    return {
        "model": model,
        "vendor": vendor,
        "family": family,
        "model_number": model_number,
        "cpus": os.cpu_count(),
        "flags": [f for f in KERNEL_FLAGS if f in flags],
    }


def cpu_key(entry: dict) -> tuple:
    """What tells two CPUs apart in a results file: model name, family and model numbers,
    kernel flags (older entries lack the numbers, the oldest name the model only)."""
    cpu = entry.get("cpu", "unknown")
    if isinstance(cpu, dict):
        return (
            cpu.get("model", "unknown"),
            cpu.get("family"),
            cpu.get("model_number"),
            tuple(cpu.get("flags", ())),
        )
    return str(cpu), None, None, ()


def record_per_cpu(path: Path, entry: dict) -> None:
    """Writes `entry` into the JSON file at `path`, which keeps one run per CPU under
    "runs": a run on the same CPU (model and flags) is replaced, other CPUs' runs are kept
    (a file holding a single run, the older form, becomes the first of the list)."""
    runs: list[dict] = []
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise SystemExit(f"bench: {path} is not valid JSON ({error}); move it away first")
        runs = old["runs"] if isinstance(old, dict) and isinstance(old.get("runs"), list) else [old]
    runs = [r for r in runs if cpu_key(r) != cpu_key(entry)] + [entry]
    path.write_text(json.dumps({"runs": runs}, indent=2, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000, help="timed update steps (default 5000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed update steps after learning_starts (default 200)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per setting (default 3)")
    parser.add_argument("--algos", default="sac,ddpg,td3")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--ours", type=Path, help="our peer_speed binary (default: target/release/examples/peer_speed)")
    parser.add_argument("--sgemm-size", type=int, default=256)
    parser.add_argument("--json", type=Path, help="also record every measurement in this file (one run per CPU: a run on another CPU is kept)")
    parser.add_argument("--worker", choices=["sb3", "sbx"], help=argparse.SUPPRESS)
    parser.add_argument("--sgemm-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--algo", choices=["sac", "ddpg", "td3"], help=argparse.SUPPRESS)
    parser.add_argument("--learning-starts", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        threads = int(args.threads)
        worker(args.worker, args.algo, threads, args.learning_starts, args.warmup, args.steps, args.seed)
        return
    if args.sgemm_worker:
        sgemm_worker(args.sgemm_worker)
        return

    algos = [a for a in args.algos.split(",") if a]
    thread_counts = [int(t) for t in args.threads.split(",") if t]
    for a in algos:
        if a not in ZOO_LEARNING_STARTS:
            raise SystemExit(f"bench_peers: unknown algorithm {a!r} (sac, ddpg, td3)")
    if args.repeats < 1 or args.steps < 1:
        raise SystemExit("bench_peers: --repeats and --steps must be at least 1")
    args.ours = our_example("peer_speed", args.ours)

    started = time.time()
    cpu = cpu_info()
    print(f"# bench-peers: {cpu['model']} ({cpu['vendor']} family {cpu['family']} model {cpu['model_number']}; {', '.join(cpu['flags'])}), {cpu['cpus']} cores, load average {load_average()} (1, 5, 15 min)")
    print("# " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    print(
        f"# protocol: Pendulum-v1, zoo hyperparameters, learning_starts {ZOO_LEARNING_STARTS}, "
        f"{args.warmup} untimed + {args.steps} timed update steps, {args.repeats} repeats, "
        "order rotated per repeat, pinned with taskset",
        flush=True,
    )
    ceiling = sgemm_ceiling(args.sgemm_size)
    avx2 = sgemm_ceiling(args.sgemm_size, "Haswell")
    for name, c in (("best kernel", ceiling), ("AVX2 kernel", avx2)):
        blas = ", ".join(f"{d.get('internal_api')} {d.get('version')} {d.get('architecture')}" for d in c["blas"])
        print(f"# single-core float32 GEMM {args.sgemm_size}³, {name} (numpy; {blas or 'BLAS unknown'}): {c['gflops']:.1f} GFLOP/s", flush=True)

    results: dict[tuple[str, int, str], list[float]] = {}
    for algo in algos:
        for threads in thread_counts:
            for repeat in range(args.repeats):
                order = IMPLS[repeat % 3 :] + IMPLS[: repeat % 3]
                for impl in order:
                    sps = measure(impl, algo, threads, args)
                    results.setdefault((algo, threads, impl), []).append(sps)
                    print(f"#   {algo} threads={threads} repeat={repeat} {impl}: {sps:.1f} steps/s", flush=True)

    print()
    print("| algorithm | threads | ours | SB3 | sbx | ours / SB3 | ours / sbx | ours GFLOP/s | of threads × ceiling | of threads × AVX2 ceiling |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for algo in algos:
        flops = update_flops(algo)
        for threads in thread_counts:
            med = {impl: statistics.median(results[(algo, threads, impl)]) for impl in IMPLS}
            gflops = med["ours"] * flops / 1e9
            fraction = gflops / (threads * ceiling["gflops"])
            fraction_avx2 = gflops / (threads * avx2["gflops"])
            rows.append(
                {
                    "algo": algo,
                    "threads": threads,
                    "median_steps_per_second": med,
                    "all_steps_per_second": {impl: results[(algo, threads, impl)] for impl in IMPLS},
                    "update_gflop": flops / 1e9,
                    "ours_gflops": gflops,
                    "fraction_of_ceiling": fraction,
                    "fraction_of_avx2_ceiling": fraction_avx2,
                }
            )
            print(
                f"| {algo.upper()} | {threads} | {med['ours']:.0f} | {med['sb3']:.0f} | {med['sbx']:.0f} "
                f"| {med['ours'] / med['sb3']:.2f}× | {med['ours'] / med['sbx']:.2f}× "
                f"| {gflops:.1f} ({flops / 1e9:.3f} GFLOP/update) | {fraction:.0%} | {fraction_avx2:.0%} |"
            )
    print()
    print(
        f"# medians of {args.repeats} env steps/s (each with one update); ceiling {ceiling['gflops']:.1f} GFLOP/s per core "
        f"(AVX2 kernel {avx2['gflops']:.1f}); "
        f"load average after: {load_average()}; {time.time() - started:.0f} s in all"
    )
    if args.json:
        record_per_cpu(
            args.json,
            {
                "cpu": cpu,
                "date": time.strftime("%Y-%m-%d"),
                "versions": versions(),
                "steps": args.steps,
                "warmup": args.warmup,
                "repeats": args.repeats,
                "sgemm": ceiling,
                "sgemm_avx2": avx2,
                "rows": rows,
            },
        )


if __name__ == "__main__":
    main()
