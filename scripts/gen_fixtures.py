#!/usr/bin/env python3
"""Writes test/fixtures/ops/<op>.json: every catalogue op's value and VJP computed by PyTorch, plus a few whole graphs
(test/fixtures/ops/_graphs.json) with their gradients. The fixtures are committed, so CI needs no torch.

Each case: {op, attrs, inputs: [wire tensor], output: wire tensor, cotangent: wire tensor | null,
            grads: [wire tensor | null]}  (null grad = the input is not differentiable); the cases of JVP_OPS also
            have {tangents: [wire tensor | null], jvp: wire tensor}, the output's tangent (forward mode).
Inputs are FP64 unless a case says otherwise; random values avoid kinks, poles and ties so finite references are exact.
Run:  /usr/bin/python3 scripts/gen_fixtures.py [op,op,...]     (Debian's python3-torch; naming ops rewrites only
their files)

Op families added later live in scripts/fixtures_<family>.py (listed in FAMILIES): each has OPS (op -> torch function
taking the attrs as keyword arguments), cases(rnd) -> [(op, inputs, attrs)] and SEED, and may name in JVP_OPS the ops
whose cases also get a forward-mode reference. Their cases run under their own seed, so a new family leaves every
other fixture as it is.
"""
import importlib
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(20261126)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'ops')

DT = {'FP64': torch.float64, 'FP32': torch.float32, 'INT32': torch.int32, 'INT64': torch.int64, 'BOOL': torch.bool}
NAME = {v: k for k, v in DT.items()}


def wire(x):
    x = x.detach().contiguous()
    dtype = NAME[x.dtype]
    flat = x.reshape(-1).tolist()
    if dtype in ('FP64', 'FP32'):
        flat = [v if math.isfinite(v) else ('NaN' if math.isnan(v) else ('Infinity' if v > 0 else '-Infinity')) for v in flat]
    return {'shape': list(x.shape), 'datatype': dtype, 'data': flat}


def rnd(shape, lo=-2.0, hi=2.0, dtype='FP64'):
    return (lo + (hi - lo) * torch.rand(shape, dtype=torch.float64)).to(DT[dtype])


def ints(values, shape=None, dtype='INT64'):
    t = torch.tensor(values, dtype=DT[dtype])
    return t.reshape(shape) if shape is not None else t


def axes_of(axes, rank):
    if axes is None:
        return list(range(rank))
    if isinstance(axes, int):
        axes = [axes]
    return sorted(a % rank for a in axes)


def reduce(fn):
    def run(x, axes=None, keepdims=False):
        dims = axes_of(axes, x.dim())
        if not dims:
            return x.clone()
        return fn(x, dims, keepdims)
    return run


def take(x, idx, axis=0):
    axis %= x.dim()
    n = x.shape[axis]
    flat = torch.where(idx < 0, idx + n, idx).reshape(-1).long()
    out = torch.index_select(x, axis, flat)
    return out.reshape(list(x.shape[:axis]) + list(idx.shape) + list(x.shape[axis + 1:]))


def slice_op(x, starts, ends, axes=None, steps=None):
    if axes is None:
        axes = list(range(len(starts)))
    steps = steps or [1] * len(starts)
    for s, e, a, st in zip(starts, ends, axes, steps):
        a %= x.dim()
        idx = list(range(x.shape[a]))[slice(s, e, st)]
        x = torch.index_select(x, a, torch.tensor(idx, dtype=torch.long))
    return x


def pad_op(x, pads, value=0.0):
    flat = []
    for before, after in reversed(pads):
        flat += [before, after]
    return F.pad(x, flat, value=value)


def one_hot(idx, depth, axis=-1, datatype='FP32'):
    out = (idx.long().unsqueeze(-1) == torch.arange(depth)).to(DT[datatype])
    return torch.movedim(out, -1, axis % out.dim())


def unsqueeze(x, axes):
    axes = [axes] if isinstance(axes, int) else axes
    rank = x.dim() + len(axes)
    for a in sorted(a % rank for a in axes):
        x = x.unsqueeze(a)
    return x


def squeeze(x, axes=None):
    if axes is None:
        return x.squeeze()
    axes = [axes] if isinstance(axes, int) else axes
    for a in sorted((a % x.dim() for a in axes), reverse=True):
        x = x.squeeze(a)
    return x


def loss_reduce(v, reduction):
    return v.mean() if reduction == 'mean' else v.sum() if reduction == 'sum' else v


def xent(logits, labels, axis=-1, reduction='mean'):
    logp = torch.log_softmax(logits, dim=axis)
    if labels.dtype in (torch.int32, torch.int64):
        per = -torch.gather(logp, axis % logits.dim(), labels.long().unsqueeze(axis % logits.dim())).squeeze(axis % logits.dim())
    else:
        per = -(labels * logp).sum(dim=axis)
    return loss_reduce(per, reduction)


def argreduce(fn):
    def run(x, axis=None, keepdims=False):
        if axis is None:
            out = fn(x.reshape(-1))
            return out.reshape([1] * x.dim()) if keepdims else out
        return fn(x, dim=axis, keepdim=keepdims)
    return run


def transpose(x, perm=None):
    return x.permute(perm if perm is not None else list(reversed(range(x.dim()))))


OPS = {
    'add': torch.add, 'sub': torch.sub, 'mul': torch.mul, 'div': torch.div, 'pow': torch.pow,
    'maximum': torch.maximum, 'minimum': torch.minimum,
    'equal': torch.eq, 'not_equal': torch.ne, 'less': torch.lt, 'less_equal': torch.le,
    'greater': torch.gt, 'greater_equal': torch.ge,
    'where': torch.where,
    'neg': torch.neg, 'exp': torch.exp, 'log': torch.log, 'log1p': torch.log1p, 'expm1': torch.expm1,
    'sqrt': torch.sqrt, 'square': torch.square, 'reciprocal': torch.reciprocal, 'abs': torch.abs, 'sign': torch.sign,
    'sin': torch.sin, 'cos': torch.cos, 'tanh': torch.tanh, 'sigmoid': torch.sigmoid, 'relu': torch.relu,
    'softplus': F.softplus, 'erf': torch.erf,
    'gelu': lambda x, approximate='none': F.gelu(x, approximate=approximate),
    'clip': lambda x, min=None, max=None: torch.clamp(x, min=min, max=max),
    'matmul': torch.matmul, 'transpose': transpose,
    'sum': reduce(lambda x, d, k: x.sum(dim=d, keepdim=k)),
    'mean': reduce(lambda x, d, k: x.mean(dim=d, keepdim=k)),
    'max': reduce(lambda x, d, k: torch.amax(x, dim=d, keepdim=k)),
    'min': reduce(lambda x, d, k: torch.amin(x, dim=d, keepdim=k)),
    'prod': reduce(lambda x, d, k: _prod(x, d, k)),
    'logsumexp': reduce(lambda x, d, k: torch.logsumexp(x, dim=d, keepdim=k)),
    'argmax': argreduce(torch.argmax), 'argmin': argreduce(torch.argmin),
    'reshape': lambda x, shape: x.reshape(shape),
    'broadcast_to': lambda x, shape: x.expand(shape),
    'squeeze': squeeze, 'unsqueeze': unsqueeze, 'slice': slice_op,
    'concat': lambda *xs, axis=0: torch.cat(xs, dim=axis),
    'stack': lambda *xs, axis=0: torch.stack(xs, dim=axis),
    'gather': take, 'pad': pad_op,
    'cast': lambda x, to: x.to(DT[to.upper() if to.upper() in DT else {'float32': 'FP32', 'float64': 'FP64'}[to]]),
    'one_hot': one_hot,
    'softmax': lambda x, axis=-1: torch.softmax(x, dim=axis),
    'log_softmax': lambda x, axis=-1: torch.log_softmax(x, dim=axis),
    'softmax_cross_entropy': xent,
    'mse': lambda a, b, reduction='mean': loss_reduce((a - b) ** 2, reduction),
    'binary_cross_entropy_with_logits': lambda a, b, reduction='mean': loss_reduce(
        F.binary_cross_entropy_with_logits(*torch.broadcast_tensors(a, b), reduction='none'), reduction),
    'identity': lambda x: x.clone(),
    'stop_gradient': lambda x: x.detach().clone(),
}


def _prod(x, dims, keep):
    for d in sorted(dims, reverse=True):
        x = x.prod(dim=d, keepdim=True)
    return x if keep else x.reshape([s for i, s in enumerate(x.shape) if i not in dims])


def C(op, inputs, **attrs):
    return (op, inputs, attrs)


pos = lambda s: rnd(s, 0.5, 2.0)
CASES = [
    C('add', [rnd([2, 3]), rnd([3])]), C('sub', [rnd([2, 1]), rnd([1, 3])]), C('mul', [rnd([4]), rnd([3, 1])]),
    C('div', [rnd([2, 3]), pos([2, 3])]), C('pow', [pos([2, 3]), rnd([3], -1.5, 1.5)]),
    C('maximum', [rnd([2, 3]), rnd([3])]), C('minimum', [rnd([3, 1]), rnd([2, 1, 4])]),
    C('equal', [ints([1, 2, 3, 3], [4]), ints([3], [1])]), C('not_equal', [rnd([3]), rnd([3])]),
    C('less', [rnd([2, 3]), rnd([3])]), C('less_equal', [rnd([3]), rnd([2, 1])]),
    C('greater', [rnd([2, 2]), rnd([2])]), C('greater_equal', [ints([1, 5, -2], [3], 'INT32'), ints([1], [1], 'INT32')]),
    C('where', [rnd([2, 3]) > 0, rnd([2, 3]), rnd([3])]),
    C('neg', [rnd([2, 3])]), C('exp', [rnd([2, 3])]), C('log', [pos([2, 3])]), C('log1p', [rnd([5], -0.5, 2)]),
    C('expm1', [rnd([5])]), C('sqrt', [pos([4])]), C('square', [rnd([2, 2])]), C('reciprocal', [pos([3])]),
    C('abs', [rnd([6])]), C('sign', [rnd([6])]), C('sin', [rnd([2, 3])]), C('cos', [rnd([2, 3])]),
    C('tanh', [rnd([2, 3])]), C('sigmoid', [rnd([2, 3], -6, 6)]), C('relu', [rnd([2, 3])]), C('softplus', [rnd([5], -5, 5)]),
    C('erf', [rnd([5])]), C('gelu', [rnd([5])]), C('gelu', [rnd([5])], approximate='tanh'),
    C('clip', [rnd([6])], min=-0.5, max=0.75), C('clip', [rnd([6])], min=None, max=0.1),
    C('matmul', [rnd([2, 3]), rnd([3, 4])]), C('matmul', [rnd([3]), rnd([2, 3, 2])]), C('matmul', [rnd([2, 1, 2, 3]), rnd([3, 3])]),
    C('transpose', [rnd([2, 3, 4])]), C('transpose', [rnd([2, 3, 4])], perm=[1, 0, 2]),
    C('sum', [rnd([2, 3, 4])], axes=[0, 2], keepdims=False), C('sum', [rnd([2, 3])], axes=None, keepdims=True),
    C('mean', [rnd([2, 3, 4])], axes=-1, keepdims=False), C('max', [rnd([3, 4])], axes=1, keepdims=True),
    C('min', [rnd([3, 4])], axes=None, keepdims=False), C('prod', [rnd([2, 3], 0.5, 1.5)], axes=0, keepdims=False),
    C('logsumexp', [rnd([2, 5])], axes=1, keepdims=False),
    C('argmax', [rnd([3, 4])], axis=1, keepdims=False), C('argmin', [rnd([3, 4])], axis=None, keepdims=False),
    C('reshape', [rnd([2, 3, 2])], shape=[3, -1]), C('broadcast_to', [rnd([3, 1])], shape=[2, 3, 4]),
    C('squeeze', [rnd([1, 3, 1])], axes=None), C('squeeze', [rnd([1, 3, 1])], axes=[-1]),
    C('unsqueeze', [rnd([2, 3])], axes=[0, 3]),
    C('slice', [rnd([4, 5])], starts=[1, -1], ends=[3, -6], axes=None, steps=[1, -2]),
    C('slice', [rnd([6])], starts=[-10], ends=[100], axes=[0], steps=[2]),
    C('concat', [rnd([2, 3]), rnd([1, 3]), rnd([3, 3])], axis=0), C('stack', [rnd([2, 3]), rnd([2, 3])], axis=-1),
    C('gather', [rnd([4, 3]), ints([1, -1, 1, 0], [2, 2])], axis=0), C('gather', [rnd([2, 5]), ints([4, 0], [2], 'INT32')], axis=1),
    C('pad', [rnd([2, 3])], pads=[[1, 0], [2, 1]], value=0.5),
    C('cast', [rnd([2, 3])], to='FP32'), C('cast', [rnd([4], -3, 3)], to='INT32'),
    C('one_hot', [ints([0, 2, 5, 1], [4])], depth=4, axis=-1, datatype='FP64'),
    C('softmax', [rnd([2, 4])], axis=-1), C('softmax', [rnd([3, 2, 2])], axis=0),
    C('log_softmax', [rnd([2, 4])], axis=-1), C('log_softmax', [rnd([2, 3])], axis=0),
    C('softmax_cross_entropy', [rnd([3, 4]), ints([0, 3, 1], [3])], axis=-1, reduction='mean'),
    C('softmax_cross_entropy', [rnd([4, 2, 3]), ints([0, 3, 1, 2, 2, 0], [2, 3], 'INT32')], axis=0, reduction='none'),
    C('softmax_cross_entropy', [rnd([2, 3]), torch.softmax(rnd([2, 3]), dim=-1)], axis=-1, reduction='sum'),
    C('mse', [rnd([2, 3]), rnd([2, 3])], reduction='mean'), C('mse', [rnd([2, 1]), rnd([3])], reduction='none'),
    C('binary_cross_entropy_with_logits', [rnd([2, 3], -4, 4), rnd([2, 3], 0, 1)], reduction='mean'),
    C('binary_cross_entropy_with_logits', [rnd([4], -4, 4), rnd([4], 0, 1)], reduction='none'),
    C('identity', [rnd([2, 2])]), C('stop_gradient', [rnd([3])]),
    # FP32 cases: the same ops in single precision (compared to 1e-4)
    C('matmul', [rnd([3, 4], dtype='FP32'), rnd([4, 2], dtype='FP32')]),
    C('tanh', [rnd([2, 3], dtype='FP32')]), C('softmax', [rnd([2, 5], dtype='FP32')], axis=-1),
    C('softmax_cross_entropy', [rnd([4, 5], dtype='FP32'), ints([1, 0, 4, 2], [4])], axis=-1, reduction='mean'),
    C('sum', [rnd([3, 4], dtype='FP32')], axes=0, keepdims=False), C('add', [rnd([2, 3], dtype='FP32'), rnd([3], dtype='FP32')]),
]


def run_case(op, inputs, attrs):
    fn = OPS[op]
    leaves = [x.clone().requires_grad_(x.is_floating_point()) for x in inputs]
    y = fn(*leaves, **attrs)
    case = {'op': op, 'attrs': attrs, 'inputs': [wire(x) for x in inputs], 'output': wire(y), 'cotangent': None,
            'grads': [None] * len(inputs)}
    if y.is_floating_point():
        cot = rnd(list(y.shape), -1, 1, NAME[y.dtype])
        case['cotangent'] = wire(cot)
        diff = [x for x in leaves if x.requires_grad]
        if y.requires_grad and diff:
            grads = torch.autograd.grad(y, diff, cot, allow_unused=True)
        else:
            grads = [None] * len(diff)
        it = iter(grads)
        for i, x in enumerate(leaves):
            if x.requires_grad:
                g = next(it)
                case['grads'][i] = wire(g if g is not None else torch.zeros_like(x))
    if op in JVP_OPS:
        tangents = [rnd(list(x.shape), -1, 1, NAME[x.dtype]) if x.is_floating_point() else None for x in inputs]
        diff = [i for i, t in enumerate(tangents) if t is not None]

        def f(*xs):
            args = list(inputs)
            for i, v in zip(diff, xs):
                args[i] = v
            return fn(*args, **attrs)
        _, out = torch.autograd.functional.jvp(f, tuple(inputs[i] for i in diff), tuple(tangents[i] for i in diff))
        case['tangents'] = [wire(t) if t is not None else None for t in tangents]
        case['jvp'] = wire(out)
    return case


def graph_cases():
    """Whole graphs (as the wire format) with torch mirrors: an MLP with softmax cross entropy and a tanh regressor."""
    out = []
    x, w1, b1, w2, b2 = rnd([5, 6]), rnd([6, 8], -0.5, 0.5), rnd([8], -0.1, 0.1), rnd([8, 3], -0.5, 0.5), rnd([3], -0.1, 0.1)
    labels = ints([0, 2, 1, 1, 0], [5])
    graph = {
        'inputs': {k: {'shape': list(v.shape), 'datatype': NAME[v.dtype]} for k, v in
                   dict(x=x, w1=w1, b1=b1, w2=w2, b2=b2, labels=labels).items()},
        'nodes': [
            {'name': 'h0', 'op': 'matmul', 'inputs': ['x', 'w1']},
            {'name': 'h1', 'op': 'add', 'inputs': ['h0', 'b1']},
            {'name': 'h', 'op': 'relu', 'inputs': ['h1']},
            {'name': 'z0', 'op': 'matmul', 'inputs': ['h', 'w2']},
            {'name': 'z', 'op': 'add', 'inputs': ['z0', 'b2']},
            {'name': 'loss', 'op': 'softmax_cross_entropy', 'inputs': ['z', 'labels'], 'attrs': {'axis': -1, 'reduction': 'mean'}},
        ],
        'outputs': ['loss'],
    }
    ps = [t.clone().requires_grad_(True) for t in (w1, b1, w2, b2)]
    loss = F.cross_entropy(torch.relu(x @ ps[0] + ps[1]) @ ps[2] + ps[3], labels)
    gs = torch.autograd.grad(loss, ps)
    out.append({'name': 'mlp_relu_xent', 'graph': graph,
                'inputs': {k: wire(v) for k, v in dict(x=x, w1=w1, b1=b1, w2=w2, b2=b2, labels=labels).items()},
                'of': 'loss', 'value': wire(loss), 'wrt': ['w1', 'b1', 'w2', 'b2'],
                'gradients': {k: wire(g) for k, g in zip(['w1', 'b1', 'w2', 'b2'], gs)}})

    a, v = rnd([4, 3]), rnd([3, 2])
    graph = {
        'inputs': {'a': {'shape': [None, 3], 'datatype': 'FP64'}, 'v': {'shape': [3, 2], 'datatype': 'FP64'}},
        'constants': {'half': {'shape': [], 'datatype': 'FP64', 'data': [0.5]}},
        'nodes': [
            {'name': 'p', 'op': 'matmul', 'inputs': ['a', 'v']},
            {'name': 't', 'op': 'tanh', 'inputs': ['p']},
            {'name': 'm', 'op': 'mul', 'inputs': ['t', 'half']},
            {'name': 'lse', 'op': 'logsumexp', 'inputs': ['m'], 'attrs': {'axes': 1}},
            {'name': 'f', 'op': 'mean', 'inputs': ['lse']},
        ],
        'outputs': ['f'],
    }
    pa, pv = a.clone().requires_grad_(True), v.clone().requires_grad_(True)
    f = torch.logsumexp(torch.tanh(pa @ pv) * 0.5, dim=1).mean()
    ga, gv = torch.autograd.grad(f, [pa, pv])
    out.append({'name': 'tanh_logsumexp', 'graph': graph, 'inputs': {'a': wire(a), 'v': wire(v)}, 'of': 'f',
                'value': wire(f), 'wrt': ['a', 'v'], 'gradients': {'a': wire(ga), 'v': wire(gv)}})
    return out


FAMILIES = ['fixtures_pool_norm', 'fixtures_math', 'fixtures_indexing', 'fixtures_reduce_v2', 'fixtures_conv',
            # linear algebra: solves and factorizations
            'fixtures_linalg_solve',
            # linear algebra: spectral decompositions and QR
            'fixtures_linalg_spectral']
# ops whose fixtures also carry a forward-mode (JVP) reference (filled from the families)
JVP_OPS = set()


def main():
    only = set(sys.argv[1].split(',')) if len(sys.argv) > 1 else None
    os.makedirs(OUT, exist_ok=True)
    by_op = {}
    for op, inputs, attrs in CASES:
        by_op.setdefault(op, []).append(run_case(op, inputs, attrs))
    rng_after_v1 = torch.get_rng_state()
    for name in FAMILIES:
        family = importlib.import_module(name)
        OPS.update(family.OPS)
        JVP_OPS.update(getattr(family, 'JVP_OPS', ()))
        torch.manual_seed(family.SEED)
        for op, inputs, attrs in family.cases(rnd):
            by_op.setdefault(op, []).append(run_case(op, inputs, attrs))
    torch.set_rng_state(rng_after_v1)
    if only is not None:
        by_op = {op: cases for op, cases in by_op.items() if op in only}
    for op, cases in by_op.items():
        with open(os.path.join(OUT, f'{op}.json'), 'w') as f:
            json.dump({'op': op, 'generator': f'scripts/gen_fixtures.py (torch {torch.__version__})', 'cases': cases}, f)
    graphs = graph_cases()
    if only is None:
        with open(os.path.join(OUT, '_graphs.json'), 'w') as f:
            json.dump({'generator': f'scripts/gen_fixtures.py (torch {torch.__version__})', 'graphs': graphs}, f)
    print(f'wrote {sum(len(c) for c in by_op.values())} op cases for {len(by_op)} ops'
          f'{"" if only is not None else f" and {len(graphs)} graphs"} to {OUT}')


if __name__ == '__main__':
    main()
