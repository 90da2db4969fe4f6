"""numpy and PyTorch CPU timings for bench/kernels/run.mjs, as a line server so the two runtimes can be measured
alternately (the machine may be busy; paired, interleaved runs keep the ratios fair).

stdin: one JSON plan line, then commands, one per line:
  "case <name>" (e.g. "case gemm/float32/512", "case exp/1048576", "case tiny"): set up, warm up and calibrate
      each peer's repetitions so one batch lasts at least min_batch_s; replies {"ok": true}
  "batch": run one batch of the current case per peer; replies {"numpy": seconds per call, "torch": ... | null}
run.mjs alternates one gradserve batch with one peer batch, so both see the same machine load.
"""
import json
import sys
import time

import numpy as np

try:
    import torch
except ImportError:  # numpy alone still gives a peer
    torch = None


def calibrate(fn, min_batch_s):
    fn()
    fn()
    reps = 1
    while True:
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        if time.perf_counter() - t >= min_batch_s:
            return reps
        reps *= 2


def batch(fn, reps):
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def case_fns(name, rng, plan):
    """(numpy fn, torch fn or None) for one case."""
    parts = name.split("/")
    if parts[0] == "gemm":
        dt, n = parts[1], int(parts[2])
        a = rng.standard_normal((n, n)).astype(dt)
        b = rng.standard_normal((n, n)).astype(dt)
        tfn = None
        if torch:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            tfn = lambda: ta @ tb
        return (lambda: a @ b), tfn, plan["gemm_threads"]
    if parts[0] == "tiny":
        small = np.ones(4, np.float32)
        ts = torch.from_numpy(small) if torch else None
        return (lambda: np.negative(small)), ((lambda: torch.neg(ts)) if torch else None), 1
    op, n = parts[0], int(parts[1])
    x = rng.uniform(-4, 4, n).astype(np.float32)
    y = rng.uniform(-4, 4, n).astype(np.float32)
    p = rng.uniform(0.01, 8, n).astype(np.float32)
    np_ops = {
        "add": lambda: np.add(x, y),
        "mul": lambda: np.multiply(x, y),
        "exp": lambda: np.exp(x),
        "tanh": lambda: np.tanh(x),
        "sigmoid": lambda: 1 / (1 + np.exp(-x)),  # numpy has no fused sigmoid
        "log": lambda: np.log(p),
    }
    tfn = None
    if torch:
        tx, ty, tp = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(p)
        tfn = {
            "add": lambda: torch.add(tx, ty),
            "mul": lambda: torch.mul(tx, ty),
            "exp": lambda: torch.exp(tx),
            "tanh": lambda: torch.tanh(tx),
            "sigmoid": lambda: torch.sigmoid(tx),
            "log": lambda: torch.log(tp),
        }[op]
    return np_ops[op], tfn, 1


def main():
    plan = json.loads(sys.stdin.readline())
    rng = np.random.default_rng(0)
    print(json.dumps({"numpy": np.__version__, "torch": torch.__version__ if torch else None}), flush=True)
    current = None
    for line in sys.stdin:
        cmd = line.strip()
        if cmd.startswith("case "):
            nfn, tfn, threads = case_fns(cmd[5:], rng, plan)
            if torch:
                torch.set_num_threads(threads)
            current = [(nfn, calibrate(nfn, plan["min_batch_s"])), (tfn, calibrate(tfn, plan["min_batch_s"]) if tfn else 0)]
            print(json.dumps({"ok": True}), flush=True)
        elif cmd == "batch":
            (nfn, nreps), (tfn, treps) = current
            print(json.dumps({"numpy": batch(nfn, nreps), "torch": batch(tfn, treps) if tfn else None}), flush=True)


main()
