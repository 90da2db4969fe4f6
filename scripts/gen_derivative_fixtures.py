#!/usr/bin/env python3
"""Generates test/fixtures/derivatives/*.json: gradserve graphs with reference derivatives from PyTorch.

Each fixture holds a graph in the wire format, FP64 inputs, and what torch.autograd.functional computes for it:
jacobian (of, wrt), jvp (tangents), hvp (vectors) and hessian (of a scalar). The torch function of each fixture is
written to mirror the graph op by op. Run:  /usr/bin/python3 scripts/gen_derivative_fixtures.py
"""
import json
import os

import torch
from torch.autograd.functional import hessian, hvp, jacobian, jvp

torch.manual_seed(20261126)
torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'derivatives')


def t(x):
    x = x.detach().contiguous()
    return {'shape': list(x.shape), 'data': x.reshape(-1).tolist()}


def inp(shape):
    return {'shape': shape, 'datatype': 'FP64'}


def node(name, op, inputs, **attrs):
    n = {'name': name, 'op': op, 'inputs': inputs}
    if attrs:
        n['attrs'] = attrs
    return n


FIXTURES = []


def fixture(name, graph, inputs, fn, jac=None, jvp_of=None, loss=None, wrt2=None):
    """fn(**inputs) -> dict of every named value the fixture reads (the torch mirror of the graph)."""
    names = list(inputs)
    fx = {'name': name, 'graph': graph, 'inputs': {k: t(v) for k, v in inputs.items()}}

    def restricted(out_name, wrt):
        def f(*xs):
            env = dict(inputs)
            env.update(dict(zip(wrt, xs)))
            return fn(**env)[out_name]
        return f

    if jac is not None:
        of, wrt = jac
        expected = {}
        for o in of:
            js = jacobian(restricted(o, wrt), tuple(inputs[w] for w in wrt))
            expected[o] = {w: t(j) for w, j in zip(wrt, js)}
        fx['jacobian'] = {'of': of, 'wrt': wrt, 'expected': expected}
    if jvp_of is not None:
        tangents = {k: torch.randn_like(v) for k, v in inputs.items()}
        _, out = jvp(restricted(jvp_of, names), tuple(inputs[k] for k in names), tuple(tangents[k] for k in names))
        fx['jvp'] = {'of': jvp_of, 'tangents': {k: t(v) for k, v in tangents.items()}, 'expected': t(out)}
    if loss is not None:
        wrt = wrt2
        vectors = {w: torch.randn_like(inputs[w]) for w in wrt}
        _, hv = hvp(restricted(loss, wrt), tuple(inputs[w] for w in wrt), tuple(vectors[w] for w in wrt))
        fx['hvp'] = {'of': loss, 'vectors': {k: t(v) for k, v in vectors.items()}, 'expected': {w: t(h) for w, h in zip(wrt, hv)}}
        hs = hessian(restricted(loss, wrt), tuple(inputs[w] for w in wrt))
        fx['hessian'] = {'of': loss, 'wrt': wrt, 'expected': {wi: {wj: t(hs[i][j]) for j, wj in enumerate(wrt)} for i, wi in enumerate(wrt)}}
    FIXTURES.append(fx)


# 1. two-layer tanh MLP with a squared loss
def mlp(x, w1, b1, w2):
    h = torch.tanh(x @ w1 + b1)
    out = h @ w2
    return {'h': h, 'out': out, 'loss': (out ** 2).mean()}


fixture(
    'mlp_tanh',
    {
        'inputs': {'x': inp([3, 4]), 'w1': inp([4, 5]), 'b1': inp([5]), 'w2': inp([5, 2])},
        'nodes': [
            node('xw', 'matmul', ['x', 'w1']), node('pre', 'add', ['xw', 'b1']), node('h', 'tanh', ['pre']),
            node('out', 'matmul', ['h', 'w2']), node('sq', 'square', ['out']),
            node('loss', 'mean', ['sq'], axes=None, keepdims=False),
        ],
        'outputs': ['out', 'loss'],
    },
    {'x': torch.randn(3, 4), 'w1': torch.randn(4, 5) * 0.5, 'b1': torch.randn(5) * 0.1, 'w2': torch.randn(5, 2)},
    mlp, jac=(['out', 'h'], ['w1', 'b1', 'x']), jvp_of='out', loss='loss', wrt2=['w1', 'b1', 'w2'],
)


# 2. log-softmax classifier with a soft-label cross entropy written out with primitive ops
def clf(x, w, labels):
    logits = x @ w
    lp = torch.log_softmax(logits, dim=-1)
    return {'logits': logits, 'lp': lp, 'loss': -(lp * labels).sum(dim=-1).mean()}


lab = torch.softmax(torch.randn(4, 3), dim=-1)
fixture(
    'log_softmax_xent',
    {
        'inputs': {'x': inp([4, 5]), 'w': inp([5, 3]), 'labels': inp([4, 3])},
        'nodes': [
            node('logits', 'matmul', ['x', 'w']), node('lp', 'log_softmax', ['logits'], axis=-1),
            node('prod', 'mul', ['lp', 'labels']), node('per', 'sum', ['prod'], axes=[-1], keepdims=False),
            node('m', 'mean', ['per'], axes=None, keepdims=False), node('loss', 'neg', ['m']),
        ],
        'outputs': ['loss'],
    },
    {'x': torch.randn(4, 5), 'w': torch.randn(5, 3), 'labels': lab},
    clf, jac=(['lp'], ['w', 'x']), jvp_of='lp', loss='loss', wrt2=['w', 'x'],
)


# 3. broadcasting elementwise chain
def elem(x, z):
    y = torch.sin(x) * torch.exp(z) / (1 + x * x)
    return {'y': y, 's': y.sum()}


fixture(
    'broadcast_elementwise',
    {
        'inputs': {'x': inp([3, 1]), 'z': inp([4])},
        'constants': {'one': {'shape': [], 'datatype': 'FP64', 'data': [1]}},
        'nodes': [
            node('sx', 'sin', ['x']), node('ez', 'exp', ['z']), node('num', 'mul', ['sx', 'ez']),
            node('xx', 'mul', ['x', 'x']), node('den', 'add', ['one', 'xx']), node('y', 'div', ['num', 'den']),
            node('s', 'sum', ['y'], axes=None, keepdims=False),
        ],
        'outputs': ['y'],
    },
    {'x': torch.randn(3, 1), 'z': torch.randn(4) * 0.5},
    elem, jac=(['y'], ['x', 'z']), jvp_of='y', loss='s', wrt2=['x', 'z'],
)


# 4. shape ops and reductions: reshape, transpose, slice, concat, max, logsumexp
def shapes(x, v):
    r = x.reshape(3, 4).t()  # [4, 3]
    sl = r[1:4]  # [3, 3]
    c = torch.cat([sl, v.reshape(1, 3)], dim=0)  # [4, 3]
    mx = c.max(dim=1).values  # [4]
    lse = torch.logsumexp(c * c, dim=0)  # [3]
    s = mx.sum() * lse.sum()
    return {'c': c, 'mx': mx, 'lse': lse, 's': s}


fixture(
    'shape_reduce',
    {
        'inputs': {'x': inp([12]), 'v': inp([3])},
        'nodes': [
            node('r0', 'reshape', ['x'], shape=[3, 4]), node('r', 'transpose', ['r0'], perm=[1, 0]),
            node('sl', 'slice', ['r'], starts=[1], ends=[4], axes=[0]), node('v2', 'reshape', ['v'], shape=[1, 3]),
            node('c', 'concat', ['sl', 'v2'], axis=0), node('mx', 'max', ['c'], axes=[1], keepdims=False),
            node('cc', 'mul', ['c', 'c']), node('lse', 'logsumexp', ['cc'], axes=[0], keepdims=False),
            node('smx', 'sum', ['mx'], axes=None, keepdims=False), node('slse', 'sum', ['lse'], axes=None, keepdims=False),
            node('s', 'mul', ['smx', 'slse']),
        ],
        'outputs': ['c', 's'],
    },
    {'x': torch.randn(12), 'v': torch.randn(3)},
    shapes, jac=(['mx', 'lse'], ['x', 'v']), jvp_of='lse', loss='s', wrt2=['x', 'v'],
)


# 5. smooth activations and a quadratic form: sigmoid, softplus, gelu-free, pow
def act(x, a):
    y = torch.sigmoid(x @ a) + torch.nn.functional.softplus(x).sum(dim=1, keepdim=True)
    q = (y ** 3).sum()
    return {'y': y, 'q': q}


fixture(
    'activations_pow',
    {
        'inputs': {'x': inp([2, 3]), 'a': inp([3, 1])},
        'constants': {'three': {'shape': [], 'datatype': 'FP64', 'data': [3]}},
        'nodes': [
            node('xa', 'matmul', ['x', 'a']), node('sg', 'sigmoid', ['xa']), node('sp', 'softplus', ['x']),
            node('sps', 'sum', ['sp'], axes=[1], keepdims=True), node('y', 'add', ['sg', 'sps']),
            node('y3', 'pow', ['y', 'three']), node('q', 'sum', ['y3'], axes=None, keepdims=False),
        ],
        'outputs': ['y', 'q'],
    },
    {'x': torch.randn(2, 3), 'a': torch.randn(3, 1)},
    act, jac=(['y'], ['x', 'a']), jvp_of='y', loss='q', wrt2=['x', 'a'],
)

# 6. pooling and normalization: max_pool, group_norm, batch_norm (given statistics), avg_pool (ceil_mode), layer_norm,
# rms_norm (its formula: torch 1.13 has no F.rms_norm); batch_norm is its formula too, since torch gives running
# statistics no gradient
def pool_norm(x, gs, gb, bm, bv, ls, lb, rs):
    F = torch.nn.functional
    p = F.max_pool2d(x, 2, 1, 1)
    gn = F.group_norm(p, 2, gs, gb, 1e-5)
    per = [1, -1, 1, 1]
    bn = (gn - bm.reshape(per)) / torch.sqrt(bv.reshape(per) + 1e-5) * gs.reshape(per) + gb.reshape(per)
    a = F.avg_pool2d(bn, 3, 2, 1, ceil_mode=True, count_include_pad=False)
    ln = F.layer_norm(a, [3, 3], ls, lb, 1e-5)
    r = ln * torch.rsqrt(ln.pow(2).mean(dim=-1, keepdim=True) + 1e-6) * rs
    return {'a': a, 'r': r, 'loss': (r * r * r).mean()}


fixture(
    'pool_norm',
    {
        'inputs': {'x': inp([1, 4, 3, 3]), 'gs': inp([4]), 'gb': inp([4]), 'bm': inp([4]), 'bv': inp([4]),
                   'ls': inp([3, 3]), 'lb': inp([3, 3]), 'rs': inp([3])},
        'nodes': [
            node('p', 'max_pool', ['x'], kernel_shape=[2, 2], strides=[1, 1], pads=[[1, 1], [1, 1]]),
            node('gn', 'group_norm', ['p', 'gs', 'gb'], groups=2),
            node('bn', 'batch_norm', ['gn', 'gs', 'gb', 'bm', 'bv']),
            node('a', 'avg_pool', ['bn'], kernel_shape=[3, 3], strides=[2, 2], pads=[[1, 1], [1, 1]], ceil_mode=True),
            node('ln', 'layer_norm', ['a', 'ls', 'lb'], axis=2), node('r', 'rms_norm', ['ln', 'rs']),
            node('r2', 'mul', ['r', 'r']), node('r3', 'mul', ['r2', 'r']),
            node('loss', 'mean', ['r3'], axes=None, keepdims=False),
        ],
        'outputs': ['r', 'loss'],
    },
    {'x': torch.randn(1, 4, 3, 3), 'gs': 1 + 0.2 * torch.randn(4), 'gb': 0.2 * torch.randn(4), 'bm': 0.2 * torch.randn(4),
     'bv': 0.5 + torch.rand(4), 'ls': 1 + 0.2 * torch.randn(3, 3), 'lb': 0.2 * torch.randn(3, 3), 'rs': 1 + 0.2 * torch.randn(3)},
    pool_norm, jac=(['a', 'r'], ['x', 'gs', 'bv']), jvp_of='r', loss='loss', wrt2=['x', 'gs', 'bm', 'ls'],
)


# 7. the v2 elementwise functions in one broadcasting chain (own seed, so fixtures added before it leave it as it is):
# silu, mish, logaddexp, cosh, atan2, asinh, hypot, celu, softsign, log10, rsqrt, selu
def math_chain(x, y):
    F = torch.nn.functional
    u = torch.logaddexp(F.silu(x), F.mish(y))  # [3, 4]
    v = torch.atan2(y, torch.cosh(x))  # x > 0: off the branch cut
    w = torch.asinh(u * v)
    h = torch.hypot(w, u)
    z = F.celu(w, 2.0) * F.softsign(h) + torch.log10(h) * torch.rsqrt(h) + F.selu(v)
    return {'u': u, 'w': w, 'z': z, 's': z.sum()}


torch.manual_seed(20261128)
fixture(
    'math_chain',
    {
        'inputs': {'x': inp([3, 1]), 'y': inp([4])},
        'nodes': [
            node('sx', 'silu', ['x']), node('my', 'mish', ['y']), node('u', 'logaddexp', ['sx', 'my']),
            node('cx', 'cosh', ['x']), node('v', 'atan2', ['y', 'cx']), node('uv', 'mul', ['u', 'v']),
            node('w', 'asinh', ['uv']), node('h', 'hypot', ['w', 'u']), node('cw', 'celu', ['w'], alpha=2.0),
            node('sh', 'softsign', ['h']), node('a', 'mul', ['cw', 'sh']), node('lh', 'log10', ['h']),
            node('rh', 'rsqrt', ['h']), node('b', 'mul', ['lh', 'rh']), node('ab', 'add', ['a', 'b']),
            node('sv', 'selu', ['v']), node('z', 'add', ['ab', 'sv']), node('s', 'sum', ['z'], axes=None, keepdims=False),
        ],
        'outputs': ['z', 's'],
    },
    {'x': torch.randn(3, 1), 'y': torch.randn(4)},
    math_chain, jac=(['u', 'w', 'z'], ['x', 'y']), jvp_of='z', loss='s', wrt2=['x', 'y'],
)

# 8. indexing and sorting (own seed): sort, top_k, take_along_axis and scatter_add (a negative and a repeated index),
# tile, flip, roll of the flattened tensor, triu; the index constant is INT64 (torch wants it non-negative)
IDX = [[0, 3], [-1, 1], [2, 2]]


def indexing(x, u, w):
    idx = torch.tensor(IDX)
    idx = torch.where(idx < 0, idx + 4, idx)
    s = torch.sort(x, dim=-1, stable=True).values
    tk = torch.topk(x, 2, dim=0).values
    ta = torch.gather(s, 1, idx)
    sa = x.scatter_add(1, idx, u)
    r = torch.roll(torch.flip(sa @ w, [0]), 1)
    z = (r * s) @ torch.triu(torch.tile(tk, (2, 1)))
    return {'z': z, 'ta': ta, 'loss': (z ** 2).sum() + (ta ** 2).sum()}


torch.manual_seed(20261129)
fixture(
    'indexing_sorting',
    {
        'inputs': {'x': inp([3, 4]), 'u': inp([3, 2]), 'w': inp([4, 4])},
        'constants': {'idx': {'shape': [3, 2], 'datatype': 'INT64', 'data': [v for row in IDX for v in row]}},
        'nodes': [
            node('s', 'sort', ['x'], axis=-1), node('tk', 'top_k', ['x'], k=2, axis=0),
            node('ta', 'take_along_axis', ['s', 'idx'], axis=1), node('sa', 'scatter_add', ['x', 'idx', 'u'], axis=1),
            node('m', 'matmul', ['sa', 'w']), node('f', 'flip', ['m'], axes=[0]), node('r', 'roll', ['f'], shifts=1),
            node('y', 'mul', ['r', 's']), node('tl', 'tile', ['tk'], repeats=[2, 1]), node('tu', 'triu', ['tl']),
            node('z', 'matmul', ['y', 'tu']), node('z2', 'square', ['z']), node('ta2', 'square', ['ta']),
            node('sz', 'sum', ['z2'], axes=None, keepdims=False), node('sta', 'sum', ['ta2'], axes=None, keepdims=False),
            node('loss', 'add', ['sz', 'sta']),
        ],
        'outputs': ['z', 'ta', 'loss'],
    },
    {'x': torch.randn(3, 4), 'u': torch.randn(3, 2), 'w': torch.randn(4, 4) * 0.5},
    indexing, jac=(['z', 'ta'], ['x', 'u', 'w']), jvp_of='z', loss='loss', wrt2=['x', 'u', 'w'],
)


# 9. a small convolutional net (own seed): strided conv with bias, tanh, then a transposed conv with asymmetric pads
def convnet(x, w1, b1, w2):
    h = torch.tanh(torch.nn.functional.conv2d(x, w1, b1, stride=2, padding=1))
    # output_padding (1, 0) as zeros appended after the unpadded result: torch 1.13's double backward refuses
    # conv_transpose2d(output_padding=...) ("output_padding is not supported for non-transposed convolutions")
    full = torch.nn.functional.pad(torch.nn.functional.conv_transpose2d(h, w2, stride=2), (0, 0, 0, 1))
    y = full[:, :, 0:full.shape[2] - 1, 1:]  # pads [[0, 1], [1, 0]]
    return {'h': h, 'y': y, 'loss': (y ** 2).mean()}


torch.manual_seed(20261207)
fixture(
    'conv_net',
    {
        'inputs': {'x': inp([1, 2, 5, 5]), 'w1': inp([3, 2, 3, 3]), 'b1': inp([3]), 'w2': inp([3, 2, 2, 2])},
        'nodes': [
            node('c1', 'conv', ['x', 'w1', 'b1'], strides=[2, 2], pads=[[1, 1], [1, 1]]), node('h', 'tanh', ['c1']),
            node('y', 'conv_transpose', ['h', 'w2'], strides=[2, 2], pads=[[0, 1], [1, 0]], output_padding=[1, 0]),
            node('sq', 'square', ['y']), node('loss', 'mean', ['sq'], axes=None, keepdims=False),
        ],
        'outputs': ['y', 'loss'],
    },
    {'x': torch.randn(1, 2, 5, 5), 'w1': torch.randn(3, 2, 3, 3) * 0.4, 'b1': torch.randn(3) * 0.1, 'w2': torch.randn(3, 2, 2, 2) * 0.5},
    convnet, jac=(['y', 'h'], ['w1', 'x']), jvp_of='y', loss='loss', wrt2=['w1', 'b1', 'w2'],
)

os.makedirs(OUT, exist_ok=True)
for fx in FIXTURES:
    with open(os.path.join(OUT, fx['name'] + '.json'), 'w') as fh:
        json.dump(fx, fh, separators=(',', ':'))
        fh.write('\n')
print(f'wrote {len(FIXTURES)} fixtures to {os.path.normpath(OUT)} (torch {torch.__version__})')
