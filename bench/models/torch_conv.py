#!/usr/bin/env python3
"""PyTorch peer of bench/models/conv.mjs: conv2d forward, and forward + backward (gradients of x, w and b for a given
output cotangent), timed in this process on demand.

  python3 torch_conv.py N C O H W K THREADS

Prints one JSON line when ready ({"ready", "version", "threads", "mkldnn"}), then answers each stdin line
"<fwd|fwdbwd> <count>" with {"times": [ms, ...], "cpu": ms} of <count> steps after 2 unmeasured ones (cpu: the
process's CPU time over those steps, all threads).
"""
import json
import os
import sys

N, C, O, H, W, K, THREADS = (int(v) for v in sys.argv[1:8])
os.environ.setdefault('OMP_NUM_THREADS', str(THREADS))
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(THREADS)
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


STEPS = {'fwd': fwd, 'fwdbwd': fwdbwd}
print(json.dumps({'ready': True, 'version': torch.__version__, 'threads': torch.get_num_threads(),
                  'mkldnn': torch.backends.mkldnn.is_available()}), flush=True)
for line in sys.stdin:
    parts = line.split()
    if len(parts) != 2 or parts[0] not in STEPS:
        continue
    step, count = STEPS[parts[0]], int(parts[1])
    for _ in range(2):
        step()
    times = []
    cpu0 = time.process_time()
    for _ in range(count):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({'times': times, 'cpu': (time.process_time() - cpu0) * 1e3}), flush=True)
