#!/usr/bin/env python3
"""PyTorch peer of bench/linalg/run.mjs: torch.linalg solve, cholesky, inv and det, forward or forward + backward
(torch.autograd.grad of a given cotangent), FP64, at one thread setting; every workload in this one process.

  python3 torch_linalg.py threads --serve

Line protocol: one JSON line {"ready": true, "threads", "version", "name"} when ready, then for every line
"<workload> N" on stdin, N timed steps of that workload (after 2 unmeasured ones) answered with {"times": [ms, ...],
"cpu": ms}. A workload is "<op>:<n>x<batch>:<fwd|vjp>". Start it with OMP_NUM_THREADS and OPENBLAS_NUM_THREADS equal
to `threads` (bench/lib/measure.mjs torchPeer does).
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
import torch_loop  # noqa: E402

threads = int(sys.argv[1])
torch_loop.set_threads(threads)
torch.set_default_dtype(torch.float64)

OPS = {
    'solve': lambda a, b: torch.linalg.solve(a, b),
    'cholesky': lambda a, b: torch.linalg.cholesky(a),
    'inv': lambda a, b: torch.linalg.inv(a),
    'det': lambda a, b: torch.linalg.det(a),
}
steps = {}


def inputs(op, n, batch):
    """The matrices of bench/linalg/run.mjs: the same construction (values differ: each side draws its own)."""
    g = torch.Generator().manual_seed(n * 7 + batch)
    shape = [batch, n, n] if batch > 1 else [n, n]
    m = torch.rand(shape, generator=g) - 0.5
    eye = torch.eye(n)
    a = m @ m.mT / n + eye if op == 'cholesky' else m / n ** 0.5 + 2 * eye
    b = torch.rand(shape[:-1], generator=g) - 0.5
    return a, b


def step_of(wl):
    if wl in steps:
        return steps[wl]
    op, size, mode = wl.split(':')
    n, batch = (int(v) for v in size.split('x'))
    a, b = inputs(op, n, batch)
    fn = OPS[op]
    if mode == 'fwd':
        def step():
            with torch.no_grad():
                return fn(a, b)
    else:
        ar, br = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
        wrt = (ar, br) if op == 'solve' else (ar,)
        with torch.no_grad():
            g = torch.rand_like(fn(a, b)) - 0.5

        def step():
            y = fn(ar, br)
            return torch.autograd.grad(y, wrt, g)
    steps[wl] = step
    return step


print(json.dumps({"ready": True, "threads": torch.get_num_threads(), "version": torch.__version__, "name": "torch.linalg"}), flush=True)
for line in sys.stdin:
    parts = line.split()
    if len(parts) != 2:
        continue
    times, cpu = torch_loop._timed(step_of(parts[0]), int(parts[1]))
    print(json.dumps({"times": times, "cpu": cpu}), flush=True)
