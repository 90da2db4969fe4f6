"""numpy and PyTorch CPU timings for bench/kernels/run.mjs. Reads the plan (JSON) on stdin, prints results as JSON.

Timing matches run.mjs: adaptive batches of at least `min_batch_s`, best batch average of `batches`.
"""
import json
import sys
import time

import numpy as np

try:
    import torch
except ImportError:  # numpy alone still gives a peer
    torch = None


def best_time(fn, min_batch_s, batches):
    fn()
    fn()
    reps = 1
    while True:
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        dt = time.perf_counter() - t
        if dt >= min_batch_s:
            break
        reps *= 2
    best = dt / reps
    for _ in range(batches - 1):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t) / reps)
    return best


def main():
    plan = json.load(sys.stdin)
    mb, nb = plan["min_batch_s"], plan["batches"]
    out = {"numpy": {}, "torch": {}, "versions": {"numpy": np.__version__, "torch": torch.__version__ if torch else None}}
    rng = np.random.default_rng(0)

    for n in plan["gemm_sizes"]:
        for dt in ("float32", "float64"):
            a = rng.standard_normal((n, n)).astype(dt)
            b = rng.standard_normal((n, n)).astype(dt)
            key = f"gemm/{dt}/{n}"
            out["numpy"][key] = best_time(lambda: a @ b, mb, nb)
            if torch:
                torch.set_num_threads(plan["gemm_threads"])
                ta, tb = torch.from_numpy(a), torch.from_numpy(b)
                out["torch"][key] = best_time(lambda: ta @ tb, mb, nb)

    if torch:
        torch.set_num_threads(1)
    for n in plan["elementwise_sizes"]:
        x = rng.uniform(-4, 4, n).astype(np.float32)
        y = rng.uniform(-4, 4, n).astype(np.float32)
        p = rng.uniform(0.01, 8, n).astype(np.float32)
        np_ops = {
            "add": lambda: np.add(x, y),
            "mul": lambda: np.multiply(x, y),
            "exp": lambda: np.exp(x),
            "tanh": lambda: np.tanh(x),
            "sigmoid": lambda: 1 / (1 + np.exp(-x)),
            "log": lambda: np.log(p),
        }
        for name, fn in np_ops.items():
            out["numpy"][f"{name}/{n}"] = best_time(fn, mb, nb)
        if torch:
            tx, ty, tp = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(p)
            t_ops = {
                "add": lambda: torch.add(tx, ty),
                "mul": lambda: torch.mul(tx, ty),
                "exp": lambda: torch.exp(tx),
                "tanh": lambda: torch.tanh(tx),
                "sigmoid": lambda: torch.sigmoid(tx),
                "log": lambda: torch.log(tp),
            }
            for name, fn in t_ops.items():
                out["torch"][f"{name}/{n}"] = best_time(fn, mb, nb)

    small = np.ones(4, np.float32)
    out["numpy"]["tiny"] = best_time(lambda: np.negative(small), mb, nb)
    if torch:
        ts = torch.from_numpy(small)
        out["torch"]["tiny"] = best_time(lambda: torch.neg(ts), mb, nb)
    json.dump(out, sys.stdout)


main()
