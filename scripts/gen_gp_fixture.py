#!/usr/bin/env python3
"""Generates test/fixtures/linalg/gp_lml.json: the worked example of docs/linalg.md, the log marginal likelihood of a
Gaussian process with a squared-exponential kernel and its gradient with respect to the kernel's length scale (and the
signal scale), computed by PyTorch (torch.linalg.cholesky, solve_triangular, autograd).

    K = s² exp(-(x_i - x_j)² / (2 l²)) + noise² I,  L = cholesky(K),  z = L⁻¹ y
    log p(y) = -½ zᵀz - log|det L| - (n / 2) log 2π

The graph is written here in the wire format, exactly as docs/linalg.md shows it; test/docs/linalg.test.ts checks the
document's graph against this file and gradserve's value and gradients against PyTorch's.
Run:  /usr/bin/python3 scripts/gen_gp_fixture.py
"""
import json
import math
import os

import torch

torch.manual_seed(20261207)
torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'linalg', 'gp_lml.json')
N = 8
NOISE_VAR = 0.01  # noise variance (noise standard deviation 0.1)


def t(x):
    x = x.detach().contiguous()
    return {'shape': list(x.shape), 'data': x.reshape(-1).tolist()}


def node(name, op, inputs, **attrs):
    n = {'name': name, 'op': op, 'inputs': inputs}
    if attrs:
        n['attrs'] = attrs
    return n


def graph():
    return {
        'inputs': {
            'x': {'shape': [N, 1], 'datatype': 'FP64'},
            'y': {'shape': [N, 1], 'datatype': 'FP64'},
            'length_scale': {'shape': [], 'datatype': 'FP64'},
            'signal_scale': {'shape': [], 'datatype': 'FP64'},
        },
        'constants': {
            'noise_eye': {'shape': [N, N], 'datatype': 'FP64', 'data': (NOISE_VAR * torch.eye(N)).reshape(-1).tolist()},
            'minus_half': {'shape': [], 'datatype': 'FP64', 'data': [-0.5]},
            'log_2pi_n_half': {'shape': [], 'datatype': 'FP64', 'data': [0.5 * N * math.log(2 * math.pi)]},
        },
        'nodes': [
            node('xt', 'transpose', ['x']),
            node('diff', 'sub', ['x', 'xt']),
            node('sq', 'square', ['diff']),
            node('l2', 'square', ['length_scale']),
            node('r', 'div', ['sq', 'l2']),
            node('e', 'mul', ['r', 'minus_half']),
            node('k0', 'exp', ['e']),
            node('s2', 'square', ['signal_scale']),
            node('k1', 'mul', ['k0', 's2']),
            node('K', 'add', ['k1', 'noise_eye']),
            node('L', 'cholesky', ['K']),
            node('z', 'triangular_solve', ['L', 'y'], lower=True),
            node('zz', 'square', ['z']),
            node('quad', 'sum', ['zz']),
            node('half_quad', 'mul', ['quad', 'minus_half']),
            node('logdet_L', 'logabsdet', ['L']),
            node('fit', 'sub', ['half_quad', 'logdet_L']),
            node('lml', 'sub', ['fit', 'log_2pi_n_half']),
        ],
        'outputs': ['lml'],
    }


def main():
    x = torch.linspace(-2, 2, N).reshape(N, 1) + 0.05 * torch.randn(N, 1)
    y = torch.sin(2 * x) + 0.1 * torch.randn(N, 1)
    ell = torch.tensor(0.7, requires_grad=True)
    s = torch.tensor(1.3, requires_grad=True)
    K = s ** 2 * torch.exp(-0.5 * (x - x.T) ** 2 / ell ** 2) + NOISE_VAR * torch.eye(N)
    L = torch.linalg.cholesky(K)
    z = torch.linalg.solve_triangular(L, y, upper=False)
    lml = -0.5 * (z ** 2).sum() - torch.log(torch.diagonal(L).abs()).sum() - 0.5 * N * math.log(2 * math.pi)
    g_ell, g_s = torch.autograd.grad(lml, [ell, s])
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        json.dump({
            'generator': f'scripts/gen_gp_fixture.py (torch {torch.__version__})',
            'graph': graph(),
            'inputs': {'x': t(x), 'y': t(y), 'length_scale': t(ell), 'signal_scale': t(s)},
            'of': 'lml',
            'value': lml.item(),
            'gradients': {'length_scale': g_ell.item(), 'signal_scale': g_s.item()},
        }, f, indent=1)
    print(f'wrote {OUT}: lml {lml.item():.6f}, d/d length_scale {g_ell.item():.6f}, d/d signal_scale {g_s.item():.6f}')


if __name__ == '__main__':
    main()
