#!/usr/bin/env python3
"""PyTorch peer of bench/models/conv.mjs: conv2d forward, or forward + backward (gradients of x, w and b for a given
output cotangent), at one thread setting.

  python3 torch_conv.py N C O H W K threads fwd|fwdbwd --serve   line protocol of bench/lib/torch_loop.py
  python3 torch_conv.py N C O H W K threads fwd|fwdbwd [reps]    one shot: {"ms", "p99", "threads", "version"}

Start it with OMP_NUM_THREADS and OPENBLAS_NUM_THREADS equal to `threads` (bench/lib/measure.mjs torchPeer does).
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
import torch_loop  # noqa: E402

N, C, O, H, W, K, threads = (int(v) for v in sys.argv[1:8])
workload = sys.argv[8]
torch_loop.set_threads(threads)
torch.manual_seed(7)
x = torch.randn(N, C, H, W)
w = torch.randn(O, C, K, K) / (C * K * K) ** 0.5
b = torch.randn(O) * 0.1
pad = K // 2
g = torch.randn(N, O, H, W)
xr, wr, br = (t.clone().requires_grad_(True) for t in (x, w, b))


def fwd():
    with torch.no_grad():
        return F.conv2d(x, w, b, padding=pad)


def fwdbwd():
    y = F.conv2d(xr, wr, br, padding=pad)
    return torch.autograd.grad(y, (xr, wr, br), g)


mkldnn = 'mkldnn available' if torch.backends.mkldnn.is_available() else 'mkldnn absent'
torch_loop.main({'fwd': fwd, 'fwdbwd': fwdbwd}[workload], f'conv2d {workload} ({mkldnn})', sys.argv[9:])
