#!/usr/bin/env python3
"""PyTorch CPU peer: MLP D-H-C forward+backward with softmax cross entropy at batch B, FP32.

  python3 torch_peer.py B D H C threads bias|nobias --serve   line protocol of bench/lib/torch_loop.py
  python3 torch_peer.py B D H C threads bias|nobias [reps]    one shot: {"ms", "p99", "threads", "version"}

`bias`: h = relu(x w1 + b1), z = h w2 + b2, gradients of w1, b1, w2, b2 (bench/engine); `nobias`: no b1, b2,
gradients of w1 and w2 (the /v1/grad request of bench/http). Start it with OMP_NUM_THREADS and OPENBLAS_NUM_THREADS
equal to `threads` (bench/lib/peers.mjs does) so that the matmuls really use that many threads."""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
import torch_loop  # noqa: E402

B, D, H, C, threads = (int(a) for a in sys.argv[1:6])
bias = sys.argv[6] == 'bias'
torch_loop.set_threads(threads)
torch.manual_seed(0)
x = torch.randn(B, D)
labels = torch.randint(0, C, (B,))
w1 = (torch.randn(D, H) / D ** 0.5).requires_grad_()
w2 = (torch.randn(H, C) / H ** 0.5).requires_grad_()
b1 = torch.zeros(H, requires_grad=True)
b2 = torch.zeros(C, requires_grad=True)
params = [w1, b1, w2, b2] if bias else [w1, w2]


def step():
    if bias:
        z = torch.relu(x @ w1 + b1) @ w2 + b2
    else:
        z = torch.relu(x @ w1) @ w2
    loss = F.cross_entropy(z, labels)
    return torch.autograd.grad(loss, params)


torch_loop.main(step, f'mlp {B}x{D}-{H}-{C} {"bias" if bias else "nobias"}', sys.argv[7:])
