#!/usr/bin/env python3
"""PyTorch peer for bench/batched: per-example gradients of the MLP 784-256-10 (batch 64, FP32) in-process.

Usage: python3 torch_peer.py <data dir> <threads> <reps>
The data dir holds the raw little-endian arrays bench/batched/run.mjs wrote (x, labels, w1, b1, w2, b2). Two ways:
  loop:  one forward + backward per example (x[i:i+1]), the gradients stacked;
  vmap:  functorch.vmap(functorch.grad(loss)) over the examples (torch.func in newer releases), when importable.
Prints JSON: {"threads", "version", "loop": {"median", "p99", "check"}, "vmap": {...} | null, "vmap_error"?}; "check"
is the per-example gradient norm of every example (to compare with gradserve's).
"""
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

data, threads, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
N, D, H, C = 64, 784, 256, 10


def load(name, dtype, shape):
    return torch.from_numpy(np.fromfile(os.path.join(data, name), dtype=dtype).reshape(shape))


x = load('x', np.float32, (N, D))
labels = load('labels', np.int32, (N,)).long()
params = [load('w1', np.float32, (D, H)), load('b1', np.float32, (H,)), load('w2', np.float32, (H, C)), load('b2', np.float32, (C,))]


def loss_fn(ps, xb, yb):
    w1, b1, w2, b2 = ps
    return F.cross_entropy(torch.relu(xb @ w1 + b1) @ w2 + b2, yb)


def loop():
    leaves = [p.detach().requires_grad_() for p in params]
    per = [[] for _ in leaves]
    for i in range(N):
        gs = torch.autograd.grad(loss_fn(leaves, x[i:i + 1], labels[i:i + 1]), leaves)
        for k, g in enumerate(gs):
            per[k].append(g)
    return [torch.stack(p) for p in per]


def timed(fn):
    for _ in range(3):
        fn()
    ts = []
    out = None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    norms = torch.sqrt(sum((g.reshape(N, -1).double() ** 2).sum(dim=1) for g in out))
    return {"median": statistics.median(ts), "p99": ts[min(len(ts) - 1, int(round(0.99 * (len(ts) - 1))))], "check": norms.tolist()}


result = {"threads": torch.get_num_threads(), "version": torch.__version__, "loop": timed(loop), "vmap": None}
try:
    try:
        from torch.func import grad, vmap  # torch >= 2.0
        result["vmap_api"] = "torch.func"
    except ImportError:
        from functorch import grad, vmap  # torch 1.13
        result["vmap_api"] = "functorch"
    per_example = vmap(grad(lambda ps, xi, yi: loss_fn(ps, xi.unsqueeze(0), yi.unsqueeze(0))), in_dims=(None, 0, 0))
    result["vmap"] = timed(lambda: per_example(params, x, labels))
except Exception as e:  # noqa: BLE001 - reported, not fatal: the loop figures stand on their own
    result["vmap_error"] = f"{type(e).__name__}: {e}"
print(json.dumps(result))
