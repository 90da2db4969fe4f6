"""PyTorch fixtures of the elementwise ops of op set v2 (more functions, rounding, activations, binary functions,
logic and tests), for scripts/gen_fixtures.py.

OPS maps each op to a torch function taking the gradserve attrs as keyword arguments; cases(rnd) returns
(op, inputs, attrs) tuples, run under SEED. Besides random values away from kinks and poles, some cases put inputs
exactly on a kink (0 for the ELU family and leaky_relu, -3 and 3 for hardsigmoid/hardswish) so PyTorch's one-sided
derivative there is what the fixture holds; others pin numerics: rounding halves, mod/fmod of negative operands,
logaddexp of 1e4 and of -Infinity, hypot of operands whose squares overflow.

hardsigmoid is its formula relu6(x + 3) / 6: torch 1.13's own backward multiplies by 1/6 rounded to float32 even in
float64 (a relative error of 3e-8); the formula's gradient has the same value 0 at both kinks.
"""
import torch
import torch.nn.functional as F

SEED = 20261128

OPS = {
    'tan': torch.tan, 'asin': torch.asin, 'acos': torch.acos, 'atan': torch.atan,
    'sinh': torch.sinh, 'cosh': torch.cosh, 'asinh': torch.asinh, 'acosh': torch.acosh, 'atanh': torch.atanh,
    'log2': torch.log2, 'log10': torch.log10, 'exp2': torch.exp2, 'rsqrt': torch.rsqrt,
    'floor': torch.floor, 'ceil': torch.ceil, 'round': torch.round, 'trunc': torch.trunc,
    'silu': F.silu, 'mish': F.mish, 'selu': F.selu, 'hardsigmoid': lambda x: F.relu6(x + 3) / 6, 'hardswish': F.hardswish,
    'softsign': F.softsign,
    'leaky_relu': lambda x, alpha=0.01: F.leaky_relu(x, negative_slope=alpha),
    'elu': lambda x, alpha=1.0: F.elu(x, alpha=alpha),
    'celu': lambda x, alpha=1.0: F.celu(x, alpha=alpha),
    'atan2': torch.atan2, 'mod': torch.remainder, 'fmod': torch.fmod, 'logaddexp': torch.logaddexp,
    'hypot': torch.hypot,
    'logical_and': torch.logical_and, 'logical_or': torch.logical_or, 'logical_xor': torch.logical_xor,
    'logical_not': torch.logical_not, 'isnan': torch.isnan, 'isinf': torch.isinf, 'isfinite': torch.isfinite,
}


def t(values, dtype='FP64', shape=None):
    dt = {'FP64': torch.float64, 'FP32': torch.float32, 'INT32': torch.int32, 'INT64': torch.int64, 'BOOL': torch.bool}[dtype]
    x = torch.tensor(values, dtype=dt)
    return x.reshape(shape) if shape is not None else x


def cases(rnd):
    inf = float('inf')
    nan = float('nan')
    out = []

    def add(op, inputs, **attrs):
        out.append((op, inputs, attrs))

    # unary functions: FP64 and FP32, inside their domains
    for op, lo, hi in [('tan', -1.2, 1.2), ('asin', -0.95, 0.95), ('acos', -0.95, 0.95), ('atan', -4, 4),
                       ('sinh', -3, 3), ('cosh', -3, 3), ('asinh', -5, 5), ('acosh', 1.05, 5), ('atanh', -0.95, 0.95),
                       ('log2', 0.1, 8), ('log10', 0.1, 50), ('exp2', -4, 4), ('rsqrt', 0.05, 6)]:
        add(op, [rnd([2, 3], lo, hi)])
        add(op, [rnd([5], lo, hi, dtype='FP32')])

    # rounding: halves go to even, values off the grid, negative zero
    halves = t([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, -3.5])
    for op in ['floor', 'ceil', 'round', 'trunc']:
        add(op, [halves])
        add(op, [rnd([2, 3], -4, 4)])
        add(op, [rnd([4], -4, 4, dtype='FP32')])

    # activations: random values (away from kinks), and exactly at the kinks
    for op, lo, hi in [('silu', -6, 6), ('mish', -6, 6), ('selu', -3, 3), ('hardsigmoid', -5, 5), ('hardswish', -5, 5),
                       ('softsign', -4, 4)]:
        add(op, [rnd([2, 3], lo, hi)])
        add(op, [rnd([5], lo, hi, dtype='FP32')])
    add('silu', [t([-1e4, 1e4, -80.0, 80.0], 'FP32')])
    add('mish', [t([-1e4, 1e4, -80.0, 80.0], 'FP32')])
    add('selu', [t([0.0, -1e-3, 1e-3])])
    add('hardsigmoid', [t([-3.0, 3.0, -2.999, 2.999])])
    add('hardswish', [t([-3.0, 3.0, -2.999, 2.999, -3.001, 3.001])])
    add('softsign', [t([0.0, -1e8, 1e8])])
    for op, alphas in [('leaky_relu', [0.01, 0.2]), ('elu', [1.0, 0.5]), ('celu', [1.0, 2.0])]:
        add(op, [rnd([2, 3], -3, 3)], alpha=alphas[0])
        add(op, [rnd([5], -3, 3, dtype='FP32')], alpha=alphas[1])
        add(op, [t([0.0, -1.0, 1.0])], alpha=alphas[1])  # the kink at 0

    # binary functions
    add('atan2', [rnd([2, 3]), rnd([3])])
    add('atan2', [rnd([2, 1], dtype='FP32'), rnd([4], dtype='FP32')])
    add('atan2', [t([0.0, -0.0, 1.0, -1.0, 1.0]), t([-1.0, -1.0, 0.0, 0.0, -1e300])])
    pm = t([5.3, -5.3, 5.3, -5.3, 0.25, -7.0])
    dv = t([2.0, 2.0, -2.0, -2.0, 0.5, 3.5])
    for op in ['mod', 'fmod']:
        add(op, [pm, dv])
        add(op, [rnd([2, 1], -6, 6), rnd([3], 0.7, 2.5) * t([1.0, -1.0, 1.0])])
        add(op, [rnd([4], -6, 6, dtype='FP32'), t([1.5, -1.5, 0.75, -2.25], 'FP32')])
        add(op, [t([7, -7, 7, -7, 0, 6], 'INT64'), t([3, 3, -3, -3, 5, 3], 'INT64')])
        add(op, [t([9, -9, 4], 'INT32', [3, 1]), t([4, -4], 'INT32')])
    add('logaddexp', [rnd([2, 3], -4, 4), rnd([3], -4, 4)])
    add('logaddexp', [t([1e4, -1e4, 1e4, 0.5], 'FP32'), t([-1e4, -1e4, 1e4, 0.5], 'FP32')])
    add('logaddexp', [t([-inf, 2.0, 700.0, -745.0]), t([1.5, -inf, 710.0, -745.5])])
    add('hypot', [rnd([2, 3]), rnd([2, 1])])
    add('hypot', [t([1e300, -1e-300, 3.0, 0.0]), t([1e300, 1e-300, -4.0, 2.0])])
    add('hypot', [t([1e30, 3e-30, -5.0], 'FP32'), t([1e30, 4e-30, 12.0], 'FP32')])

    # logic and tests
    a = t([True, True, False, False], 'BOOL', [2, 2])
    b = t([True, False], 'BOOL')
    for op in ['logical_and', 'logical_or', 'logical_xor']:
        add(op, [a, b])
        add(op, [t([True, False, True], 'BOOL'), t([False, False, True], 'BOOL')])
    add('logical_not', [a])
    special = t([nan, inf, -inf, 0.0, -0.0, 1.5, -1e308, 5e-324])
    for op in ['isnan', 'isinf', 'isfinite']:
        add(op, [special])
        add(op, [t([nan, inf, -inf, 2.5], 'FP32')])
    return out
