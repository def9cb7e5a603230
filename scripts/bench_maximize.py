#!/usr/bin/env python3
"""The chapter's `maximize` step against the way a Python user writes it, side by side on one
core: scipy's L-BFGS-B called once per state and start on a torch MLP q (autograd gradients),
against our `BatchedLbfgs` (examples/maximize_race.rs), which advances every search in
lockstep and evaluates q and its action gradient for all of them in one batched call.

    just bench-maximize                 # builds ours, runs this in .venv-peers
    .venv-peers/bin/python scripts/bench_maximize.py [--states 256] [--rounds 3] [--json out.json]

Both sides get the same network (a torch `Sequential` [s + a, 256, 256, 1] with ReLU and its
default initialization; its float32 parameters are handed to ours), the same states (uniform
in [-1, 1]), the same starting points (the box centre, then uniform points of the box
[-1, 1]^d) and the same stopping rules: scipy's defaults (pgtol 1e-5, factr 1e7, memory 10)
and ours set to match (a largest gradient component of 1e-5, a relative decrease of
1e7·2.2e-16, memory 10). Each side returns the best of its starts per state, and the values
are compared state by state.

Cases: a 1-D action with 1 and 4 starts (3 state components, as Pendulum) and a 6-D action
with 4 starts (17 state components, as HalfCheetah). Every measurement runs in a fresh
process pinned with `taskset` to core 0 with one thread; ours and scipy alternate for
`rounds` rounds (order rotating) and each figure is the median over rounds. Ours also runs
one state at a time (the same algorithm, no batching) to show what the batching buys.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_peers import cpu_info, our_example, pinned, record_per_cpu, run_line, thread_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HIDDEN = 256
# name, state components, action components, starts per state
CASES = [("1d_1start", 3, 1, 1), ("1d_4starts", 3, 1, 4), ("6d_4starts", 17, 6, 4)]
# Searches per batched call on our side.
BATCH = 1024


def build_cases(states: int, seed: int) -> list[dict]:
    """Network, states and starting points of every case, as plain lists (the JSON our
    side reads); the torch network is rebuilt from `params` by the worker."""
    import numpy as np
    import torch

    cases = []
    for i, (name, n, m, k) in enumerate(CASES):
        torch.manual_seed(seed + i)
        net = torch.nn.Sequential(
            torch.nn.Linear(n + m, HIDDEN), torch.nn.ReLU(),
            torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU(),
            torch.nn.Linear(HIDDEN, 1),
        )
        params = []
        for layer in net:
            if isinstance(layer, torch.nn.Linear):
                # Ours: weights `in × out` row-major, then the biases.
                params += layer.weight.detach().t().contiguous().flatten().tolist()
                params += layer.bias.detach().flatten().tolist()
        rng = np.random.default_rng(seed + 100 + i)
        s = rng.uniform(-1.0, 1.0, (states, n))
        starts = np.zeros((states, k, m))
        starts[:, 1:, :] = rng.uniform(-1.0, 1.0, (states, k - 1, m))
        cases.append({
            "name": name,
            "state_dim": n,
            "sizes": [n + m, HIDDEN, HIDDEN, 1],
            "params": params,
            "low": [-1.0] * m,
            "high": [1.0] * m,
            "starts_per_state": k,
            "states": s.flatten().tolist(),
            "starts": starts.flatten().tolist(),
        })
    return cases


def scipy_worker(cases: list[dict]) -> None:
    """Every case the Python way, in this (pinned, one-thread) process: per state and start,
    `scipy.optimize.minimize(method="L-BFGS-B")` on −q with autograd's gradient."""
    import numpy as np
    import scipy
    import torch
    from scipy.optimize import minimize

    torch.set_num_threads(1)
    out = []
    for case in cases:
        sizes = case["sizes"]
        layers, offset = [], 0
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            linear = torch.nn.Linear(fan_in, fan_out)
            w = torch.tensor(case["params"][offset:offset + fan_in * fan_out]).reshape(fan_in, fan_out)
            offset += fan_in * fan_out
            b = torch.tensor(case["params"][offset:offset + fan_out])
            offset += fan_out
            with torch.no_grad():
                linear.weight.copy_(w.t())
                linear.bias.copy_(b)
            layers += [linear, torch.nn.ReLU()]
        net = torch.nn.Sequential(*layers[:-1])
        n, k = case["state_dim"], case["starts_per_state"]
        m = len(case["low"])
        states = np.asarray(case["states"]).reshape(-1, n)
        starts = np.asarray(case["starts"]).reshape(len(states), k, m)
        bounds = list(zip(case["low"], case["high"]))

        def run() -> tuple[list[float], int]:
            values, evaluations = [], 0
            for s, x0s in zip(states, starts):
                s_t = torch.tensor(s, dtype=torch.float32)

                def negative_q(a: np.ndarray) -> tuple[float, np.ndarray]:
                    a_t = torch.tensor(a, dtype=torch.float32, requires_grad=True)
                    q = net(torch.cat([s_t, a_t]))
                    q.backward()
                    return -q.item(), -a_t.grad.numpy().astype(np.float64)

                best = -np.inf
                for x0 in x0s:
                    result = minimize(negative_q, x0, jac=True, method="L-BFGS-B", bounds=bounds)
                    evaluations += result.nfev
                    best = max(best, -float(result.fun))
                values.append(best)
            return values, evaluations

        start = time.perf_counter()
        values, evaluations = run()
        seconds = time.perf_counter() - start
        out.append({
            "case": case["name"],
            "states": len(states),
            "seconds": seconds,
            "maximizations_per_second": len(states) / seconds,
            "evaluations_per_maximization": evaluations / len(states),
            "values": values,
        })
    print("scipy_json " + json.dumps({"results": out, "scipy": scipy.__version__, "torch": torch.__version__}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--states", type=int, default=256, help="states per case (default 256)")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of ours and scipy (default 3)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case on our side, median taken (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ours", type=Path, help="the maximize_race binary (default: target/release/examples/maximize_race)")
    parser.add_argument("--json", type=Path, help="also record the race in this file (one run per CPU: a run on another CPU is kept)")
    parser.add_argument("--scipy-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scipy_worker:
        scipy_worker(json.loads(sys.stdin.read()))
        return
    if min(args.states, args.rounds, args.repeats) < 1:
        raise SystemExit("bench_maximize: --states, --rounds and --repeats must be at least 1")
    args.ours = our_example("maximize_race", args.ours)

    started = time.time()
    cpu = cpu_info()
    print(f"# bench-maximize: {cpu['model']}, {args.states} states per case, load average {os.getloadavg()[0]:.2f}", flush=True)
    cases = build_cases(args.states, args.seed)
    env = thread_env(1)
    ours_input = json.dumps({"repeats": args.repeats, "batch": BATCH, "cases": cases})
    scipy_input = json.dumps(cases)
    ours_command = pinned(1, [str(args.ours)])
    scipy_command = pinned(1, [sys.executable, __file__, "--scipy-worker"])
    our_rounds, scipy_rounds = [], []
    for r in range(args.rounds):
        for side in (("ours", "scipy") if r % 2 == 0 else ("scipy", "ours")):
            if side == "ours":
                our_rounds.append(run_line(ours_command, env, "race_json ", ours_input)["results"])
            else:
                scipy_rounds.append(run_line(scipy_command, env, "scipy_json ", scipy_input))
        print(f"#   round {r + 1} of {args.rounds} done", flush=True)

    rows = []
    print()
    print("| action | starts | scipy + torch, one call per state and start | ours, one state at a time | ours, lockstep | lockstep / scipy | q evaluations per maximize (scipy / ours) | states where ours is lower / higher than scipy by > 1e-4 | mean of ours − scipy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i, (name, n, m, k) in enumerate(CASES):
        def rate(results, mode=None):
            return statistics.median(
                next(x for x in rr if x["case"] == name and x.get("mode", mode) == mode)["maximizations_per_second"]
                for rr in results
            )

        scipy_rate = rate([s["results"] for s in scipy_rounds])
        lockstep = rate(our_rounds, "lockstep")
        single = rate(our_rounds, "one_state_at_a_time")
        ours = next(x for x in our_rounds[0] if x["case"] == name and x["mode"] == "lockstep")
        theirs = scipy_rounds[0]["results"][i]
        lower = sum(o < s - 1e-4 * (1 + abs(s)) for o, s in zip(ours["values"], theirs["values"]))
        higher = sum(o > s + 1e-4 * (1 + abs(s)) for o, s in zip(ours["values"], theirs["values"]))
        mean_difference = statistics.fmean(o - s for o, s in zip(ours["values"], theirs["values"]))
        row = {
            "case": name, "state_dim": n, "action_dim": m, "starts": k, "states": args.states,
            "scipy_per_second": scipy_rate, "ours_lockstep_per_second": lockstep,
            "ours_one_state_at_a_time_per_second": single, "ratio_lockstep_to_scipy": lockstep / scipy_rate,
            "scipy_evaluations": theirs["evaluations_per_maximization"],
            "ours_evaluations": ours["evaluations_per_maximization"], "ours_batched_calls": ours["batched_calls"],
            "ours_lower_states": lower, "ours_higher_states": higher, "mean_difference": mean_difference,
            "per_round": {
                "scipy": [s["results"][i]["maximizations_per_second"] for s in scipy_rounds],
                "ours_lockstep": [next(x for x in rr if x["case"] == name and x["mode"] == "lockstep")["maximizations_per_second"] for rr in our_rounds],
            },
        }
        rows.append(row)
        print(
            f"| {m}-D | {k} | {scipy_rate:.0f}/s | {single:.0f}/s | {lockstep:.0f}/s | {lockstep / scipy_rate:.0f}× "
            f"| {row['scipy_evaluations']:.0f} / {row['ours_evaluations']:.0f} | {lower} / {higher} | {mean_difference:+.2g} |"
        )
    print(f"# scipy {scipy_rounds[0]['scipy']}, torch {scipy_rounds[0]['torch']}; {time.time() - started:.0f} s in all")
    if args.json:
        record_per_cpu(args.json, {
            "cpu": cpu,
            "date": time.strftime("%Y-%m-%d"),
            "rounds": args.rounds,
            "repeats": args.repeats,
            "batch": BATCH,
            "versions": {"scipy": scipy_rounds[0]["scipy"], "torch": scipy_rounds[0]["torch"]},
            "cases": rows,
        })


if __name__ == "__main__":
    main()
