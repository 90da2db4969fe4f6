#!/usr/bin/env python3
"""PyTorch peer of bench/models/models.mjs: the models of graphs.mjs, forward + backward (the gradient of the
scalar loss w.r.t. every parameter and the input), from the tensors the benchmark wrote to a folder.

  python3 torch_models.py MODEL DIR threads --serve          line protocol of bench/lib/torch_loop.py
  python3 torch_models.py MODEL DIR threads --check OUTDIR   writes loss.bin and grad_<name>.bin (float32)
  python3 torch_models.py MODEL DIR threads --memory         {"baseline", "peak"} bytes of RSS around one step

DIR holds manifest.json ({"shapes", "dtypes", "wrt", "config"}) and <name>.bin per input (little-endian float32, or
int64 for the labels). Start it with OMP_NUM_THREADS and OPENBLAS_NUM_THREADS equal to `threads`.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
import torch_loop  # noqa: E402

model, folder, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
mode = sys.argv[4]
torch_loop.set_threads(threads)
with open(os.path.join(folder, 'manifest.json')) as f:
    manifest = json.load(f)
config = manifest['config']


def load(name):
    dt = np.int64 if manifest['dtypes'].get(name) == 'INT64' else np.float32
    a = np.fromfile(os.path.join(folder, f'{name}.bin'), dtype=dt).reshape(manifest['shapes'][name])
    return torch.from_numpy(a)


t = {name: load(name) for name in manifest['shapes']}
wrt = manifest['wrt']
for name in wrt:
    t[name].requires_grad_(True)


def lenet(t):
    h = F.max_pool2d(F.relu(F.conv2d(t['x'], t['w1'], t['b1'], padding=2)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, t['w2'], t['b2'])), 2)
    h = h.flatten(1)
    h = F.relu(torch.addmm(t['fb1'], h, t['fw1']))
    h = F.relu(torch.addmm(t['fb2'], h, t['fw2']))
    return F.cross_entropy(torch.addmm(t['fb3'], h, t['fw3']), t['labels'])


def resblock(t):
    # running statistics are updated in place (training mode); the output uses the batch statistics only
    h = F.conv2d(t['x'], t['w1'], padding=1)
    h = F.relu(F.batch_norm(h, t['m1'], t['v1'], t['g1'], t['be1'], training=True, eps=1e-5))
    h = F.conv2d(h, t['w2'], padding=1)
    y = F.relu(F.batch_norm(h, t['m2'], t['v2'], t['g2'], t['be2'], training=True, eps=1e-5) + t['x'])
    return (y * y).mean()


def transformer(t):
    B, T, D = t['x'].shape
    H = config.get('heads', 4)
    dh = D // H
    x = t['x']
    h = F.layer_norm(x, (D,), t['ln1g'], t['ln1b'], eps=1e-5)

    def proj(w, b):
        return (h @ w + b).view(B, T, H, dh).transpose(1, 2)  # [B, H, T, dh]

    q, k, v = proj(t['wq'], t['bq']), proj(t['wk'], t['bk']), proj(t['wv'], t['bv'])
    p = torch.softmax((q @ k.transpose(-2, -1)) * (1 / math.sqrt(dh)), dim=-1)
    att = (p @ v).transpose(1, 2).reshape(B, T, D)
    x1 = x + (att @ t['wo'] + t['bo'])
    h2 = F.layer_norm(x1, (D,), t['ln2g'], t['ln2b'], eps=1e-5)
    y = x1 + (F.gelu(h2 @ t['w1'] + t['c1']) @ t['w2'] + t['c2'])
    return (y * y).mean()


forward = {'lenet': lenet, 'resblock': resblock, 'transformer': transformer}[model]
params = [t[n] for n in wrt]


def step():
    loss = forward(t)
    return loss, torch.autograd.grad(loss, params)


def rss():
    with open('/proc/self/status') as f:
        s = f.read()
    field = lambda k: int(s.split(k + ':')[1].split()[0]) * 1024  # noqa: E731
    return field('VmRSS'), field('VmHWM')


if mode == '--serve':
    torch_loop.main(step, f'{model} forward+backward', sys.argv[4:])
elif mode == '--check':
    out = sys.argv[5]
    loss, grads = step()
    loss.detach().numpy().astype(np.float32).tofile(os.path.join(out, 'loss.bin'))
    for n, g in zip(wrt, grads):
        g.numpy().astype(np.float32).tofile(os.path.join(out, f'grad_{n}.bin'))
    print(json.dumps({'loss': loss.item()}))
elif mode == '--memory':
    # One step after a warm-up, with the result held: peak RSS (VmHWM, reset through clear_refs) over the RSS before
    # it. Run with MALLOC_MMAP_THRESHOLD_ set low so freed tensors go back to the system at once.
    step()
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    base, _ = rss()
    r = step()
    _, peak = rss()
    print(json.dumps({'baseline': base, 'peak': peak, 'threads': torch.get_num_threads()}))
    del r
else:
    raise SystemExit(f'unknown mode {mode}')
