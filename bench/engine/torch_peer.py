#!/usr/bin/env python3
"""PyTorch CPU peer for bench/engine: MLP forward+backward with softmax cross entropy, median ms per step.
Usage: python3 torch_peer.py B D H C reps threads  -> prints JSON {"ms": median, "threads": n, "version": ...}"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

B, D, H, C, reps, threads = (int(a) for a in sys.argv[1:7])
torch.set_num_threads(threads)
torch.manual_seed(0)
x = torch.randn(B, D)
labels = torch.randint(0, C, (B,))
w1 = (torch.randn(D, H) / D ** 0.5).requires_grad_()
b1 = torch.zeros(H, requires_grad=True)
w2 = (torch.randn(H, C) / H ** 0.5).requires_grad_()
b2 = torch.zeros(C, requires_grad=True)
params = [w1, b1, w2, b2]


def step():
    loss = F.cross_entropy(torch.relu(x @ w1 + b1) @ w2 + b2, labels)
    return torch.autograd.grad(loss, params)


for _ in range(3):
    step()
times = []
for _ in range(reps):
    t0 = time.perf_counter()
    step()
    times.append((time.perf_counter() - t0) * 1000)
print(json.dumps({'ms': statistics.median(times), 'threads': torch.get_num_threads(), 'version': torch.__version__}))
