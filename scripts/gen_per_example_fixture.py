#!/usr/bin/env python3
"""Generates test/fixtures/per_example/mlp_ce.json: per-example gradients of an MLP with cross entropy,
computed by PyTorch looping over the examples (each example alone through the model, as a batch of one).

Two cases: examples along axis 0 (x [N, D], labels [N]) with a tanh hidden layer, and examples along the last axis
(x [D, N], labels [N], per_example axis -1) with a relu hidden layer. Each holds the graph in the wire format, FP64
inputs, the whole batch's loss, and per wrt value the per-example gradients in the layout /v1/grad returns them (a
sliced input's gradient in that input's own shape; any other with a leading axis of size N).
Run:  /usr/bin/python3 scripts/gen_per_example_fixture.py
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20261216)
torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'per_example', 'mlp_ce.json')
N, D, H, C = 7, 6, 5, 4


def t(x):
    x = x.detach().contiguous()
    return {'shape': list(x.shape), 'data': x.reshape(-1).tolist()}


def node(name, op, inputs, **attrs):
    n = {'name': name, 'op': op, 'inputs': inputs}
    if attrs:
        n['attrs'] = attrs
    return n


def case(name, columns, act):
    x = torch.randn(D, N) if columns else torch.randn(N, D)
    labels = torch.randint(0, C, (N,))
    w1, b1 = torch.randn(D, H) / D ** 0.5, torch.randn(H) * 0.1
    w2, b2 = torch.randn(H, C) / H ** 0.5, torch.randn(C) * 0.1
    f = torch.tanh if act == 'tanh' else torch.relu

    def model(xb, yb, w1, b1, w2, b2):
        rows = xb.t() if columns else xb
        return F.cross_entropy(f(rows @ w1 + b1) @ w2 + b2, yb)

    params = [w1, b1, w2, b2]
    grads = {k: [] for k in ['x', 'w1', 'b1', 'w2', 'b2']}
    for i in range(N):
        xi = (x[:, i:i + 1] if columns else x[i:i + 1]).clone().requires_grad_()
        ps = [p.clone().requires_grad_() for p in params]
        loss = model(xi, labels[i:i + 1], *ps)
        gs = torch.autograd.grad(loss, [xi, *ps])
        grads['x'].append(gs[0])
        for k, g in zip(['w1', 'b1', 'w2', 'b2'], gs[1:]):
            grads[k].append(g)
    expected = {k: torch.stack(v) for k, v in grads.items() if k != 'x'}
    expected['x'] = torch.cat(grads['x'], dim=1 if columns else 0)
    loss = model(x, labels, *params)

    first = [node('xt', 'transpose', ['x'], perm=[1, 0])] if columns else []
    graph = {
        'inputs': {
            'x': {'shape': [D, None] if columns else [None, D], 'datatype': 'FP64'},
            'labels': {'shape': [None], 'datatype': 'INT64'},
            'w1': {'shape': [D, H], 'datatype': 'FP64'}, 'b1': {'shape': [H], 'datatype': 'FP64'},
            'w2': {'shape': [H, C], 'datatype': 'FP64'}, 'b2': {'shape': [C], 'datatype': 'FP64'},
        },
        'nodes': first + [
            node('h', 'matmul', ['xt' if columns else 'x', 'w1']),
            node('hb', 'add', ['h', 'b1']),
            node('a', act, ['hb']),
            node('z', 'matmul', ['a', 'w2']),
            node('logits', 'add', ['z', 'b2']),
            node('loss', 'softmax_cross_entropy', ['logits', 'labels'], reduction='mean'),
        ],
        'outputs': ['loss'],
    }
    return {
        'name': name,
        'graph': graph,
        'inputs': {'x': t(x), 'labels': {'shape': [N], 'datatype': 'INT64', 'data': labels.tolist()},
                   'w1': t(w1), 'b1': t(b1), 'w2': t(w2), 'b2': t(b2)},
        'per_example': {'axis': -1 if columns else 0, 'inputs': ['x', 'labels']},
        'of': 'loss',
        'wrt': ['w1', 'b1', 'w2', 'b2', 'x'],
        'loss': t(loss),
        'expected': {k: t(v) for k, v in expected.items()},
    }


fixture = {
    'generator': f'scripts/gen_per_example_fixture.py, torch {torch.__version__}',
    'cases': [case('rows_tanh', False, 'tanh'), case('columns_relu', True, 'relu')],
}
with open(OUT, 'w') as fh:
    json.dump(fixture, fh, indent=1)
    fh.write('\n')
print(f'wrote {OUT}')
