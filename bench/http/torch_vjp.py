#!/usr/bin/env python3
"""PyTorch peer for bench/http: the seed-scale linear-layer VJP in-process, median ms.
Usage: python3 torch_vjp.py N D M reps threads -> JSON {"ms": median, "threads": n, "version": ...}"""
import json
import statistics
import sys
import time

import torch

N, D, M, reps, threads = (int(a) for a in sys.argv[1:6])
torch.set_num_threads(threads)
torch.manual_seed(0)
x = torch.randn(N, D, requires_grad=True)
w = (torch.randn(D, M) / D ** 0.5).requires_grad_()
dy = torch.randn(N, M)


def step():
    y = x @ w
    return torch.autograd.grad(y, (x, w), dy)


for _ in range(2):
    step()
times = []
for _ in range(reps):
    t0 = time.perf_counter()
    step()
    times.append((time.perf_counter() - t0) * 1e3)
print(json.dumps({"ms": statistics.median(times), "threads": torch.get_num_threads(), "version": torch.__version__}))
