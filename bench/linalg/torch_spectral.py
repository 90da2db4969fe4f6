#!/usr/bin/env python3
"""PyTorch peer of bench/linalg/spectral.mjs: eigvalsh, svdvals and qr forward, and forward + VJP, at one thread setting.

  python3 torch_spectral.py threads --serve
prints {"ready": true, ...}, then answers each line "<workload> N" (workload: <op>-<size>-<mode>, op eigh|svd|qr, size
64|256|16x1024, mode fwd|vjp) with {"times": [ms, ...], "cpu": ms} of N steps after 2 unmeasured ones. Start it with
OMP_NUM_THREADS and OPENBLAS_NUM_THREADS equal to `threads` (bench/lib/measure.mjs torchPeer does).
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
import torch_loop  # noqa: E402

threads = int(sys.argv[1])
torch_loop.set_threads(threads)
torch.manual_seed(7)
FNS = {
    'eigh': lambda a: (torch.linalg.eigvalsh(a),),
    'svd': lambda a: (torch.linalg.svdvals(a),),
    'qr': lambda a: tuple(torch.linalg.qr(a)),
}


def shape_of(size):
    return [1024, 16, 16] if size == '16x1024' else [int(size), int(size)]


def input_for(op, size):
    a = torch.randn(*shape_of(size), dtype=torch.float64)
    return (a + a.transpose(-1, -2)) / 2 if op == 'eigh' else a


cache = {}


def step_for(wl):
    if wl in cache:
        return cache[wl]
    op, size, mode = wl.split('-')
    a = input_for(op, size)
    fn = FNS[op]
    if mode == 'fwd':
        def step():
            with torch.no_grad():
                return fn(a)
    else:
        ar = a.clone().requires_grad_(True)
        gs = [torch.randn_like(y) for y in fn(a)]

        def step():
            ys = fn(ar)
            return torch.autograd.grad(ys, ar, gs)
    cache[wl] = step
    return step


print(json.dumps({"ready": True, "threads": torch.get_num_threads(), "version": torch.__version__, "name": "torch.linalg"}), flush=True)
for line in sys.stdin:
    parts = line.split()
    if len(parts) != 2:
        continue
    times, cpu = torch_loop._timed(step_for(parts[0]), int(parts[1]))
    print(json.dumps({"times": times, "cpu": cpu}), flush=True)
