#!/usr/bin/env python3
"""PyTorch side of bench/jacobian: the same tanh MLP layer, Jacobian and HVP timings as JSON on stdout.

y = tanh(x @ w + b), x [1, n], w [n, n], b [n], FP32; loss = sum(y^2) for the HVP. Inputs are read from the JSON
the Node side writes, so both sides differentiate the same numbers (and the results are returned for a check).
"""
import json
import sys
import time

import torch
from torch.autograd.functional import hvp, jacobian

spec = json.load(sys.stdin)
n, reps, threads = spec['n'], spec['reps'], spec['threads']
torch.set_num_threads(threads)
x = torch.tensor(spec['x'], dtype=torch.float32).reshape(1, n)
w = torch.tensor(spec['w'], dtype=torch.float32).reshape(n, n)
b = torch.tensor(spec['b'], dtype=torch.float32)
v = torch.tensor(spec['v'], dtype=torch.float32).reshape(n, n)


def layer_x(xx):
    return torch.tanh(xx @ w + b)


def layer_w(ww):
    return torch.tanh(x @ ww + b)


def loss_w(ww):
    return (torch.tanh(x @ ww + b) ** 2).sum()


def timed(fn):
    fn()
    fn()
    ts = []
    out = None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return min(ts) * 1e3, out


res = {'torch': torch.__version__, 'threads': torch.get_num_threads(), 'ms': {}, 'check': {}}
ms, jx = timed(lambda: jacobian(layer_x, x, vectorize=True))
res['ms']['jacobian_x_vectorize'] = ms
res['check']['jacobian_x_sum'] = float(jx.double().sum())
ms, jw = timed(lambda: jacobian(layer_w, w, vectorize=True))
res['ms']['jacobian_w_vectorize'] = ms
res['check']['jacobian_w_sum'] = float(jw.double().sum())
ms, _ = timed(lambda: jacobian(layer_x, x, vectorize=True, strategy='forward-mode'))
res['ms']['jacobian_x_vectorize_forward'] = ms
try:
    import functorch
    ms, _ = timed(lambda: functorch.jacrev(layer_x)(x))
    res['ms']['jacrev_x'] = ms
    ms, _ = timed(lambda: functorch.jacfwd(layer_x)(x))
    res['ms']['jacfwd_x'] = ms
    ms, _ = timed(lambda: functorch.jacrev(layer_w)(w))
    res['ms']['jacrev_w'] = ms
    ms, _ = timed(lambda: functorch.jvp(functorch.grad(loss_w), (w,), (v,))[1])
    res['ms']['hvp_functorch'] = ms
except Exception as e:  # functorch is optional
    res['functorch_error'] = str(e)
ms, hv = timed(lambda: hvp(loss_w, w, v)[1])
res['ms']['hvp_autograd'] = ms
res['check']['hvp_sum'] = float(hv.double().sum())
json.dump(res, sys.stdout)
