#!/usr/bin/env python3
"""PyTorch peer for bench/http: the seed-scale linear-layer VJP in-process (y = x w; dx, dw for a given dy), FP32.

  python3 torch_vjp.py N D M threads --serve   line protocol of bench/lib/torch_loop.py
  python3 torch_vjp.py N D M threads [reps]    one shot: {"ms", "p99", "threads", "version"}

Start it with OMP_NUM_THREADS and OPENBLAS_NUM_THREADS equal to `threads` (bench/lib/peers.mjs does)."""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
import torch_loop  # noqa: E402

N, D, M, threads = (int(a) for a in sys.argv[1:5])
torch_loop.set_threads(threads)
torch.manual_seed(0)
x = torch.randn(N, D, requires_grad=True)
w = (torch.randn(D, M) / D ** 0.5).requires_grad_()
dy = torch.randn(N, M)


def step():
    y = x @ w
    return torch.autograd.grad(y, (x, w), dy)


torch_loop.main(step, f'vjp x[{N},{D}] w[{D},{M}]', sys.argv[5:])
